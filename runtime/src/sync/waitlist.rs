//! Intrusive FIFO lists of parked waiters whose nodes live on the waiters' own stacks.
//!
//! A goroutine's stack never moves, and neither does a thread's, so a waiter can put its node in
//! its own frame and link it into a list: queueing allocates nothing.
//!
//! Invariants:
//! - a node is linked into at most one list, and every field but `woken` is read or written only
//!   by whoever holds the lock around that list (the node's owner included) while it is linked;
//! - only the party that unlinks a node wakes it, and it does so through [`Node::release`], which
//!   moves the waiter handle out of the node and then publishes `woken` with a release store: after
//!   that store the node's owner may return and its frame may vanish, so nobody touches the node
//!   again;
//! - the owner leaves [`Node::wait`] only after seeing `woken` (with an acquire load), so it never
//!   frees a node that is still linked; spurious returns from parking are absorbed by the loop.

use std::marker::PhantomPinned;
use std::ptr;
use std::time::Instant;

use crate::sched::{WaitReason, Waiter, park_current};
use crate::shim::atomic::{AtomicBool, Ordering};

/// One waiter in a [`List`], in its owner's stack frame.
pub(crate) struct Node {
    /// What the waiter waits for (the semaphore table keys on it; 0 elsewhere).
    addr: usize,
    /// Who to wake; taken out by the waker.
    waiter: Option<Waiter>,
    /// Set by the waker before `woken`: it acquired on the waiter's behalf (direct handoff).
    ticket: bool,
    prev: *mut Node,
    next: *mut Node,
    woken: AtomicBool,
    _pinned: PhantomPinned,
}

impl Node {
    /// A node for the calling goroutine (or thread), waiting for `addr`.
    pub(crate) fn new(addr: usize) -> Node {
        Node {
            addr,
            waiter: Some(Waiter::current()),
            ticket: false,
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            woken: AtomicBool::new(false),
            _pinned: PhantomPinned,
        }
    }

    /// Owner side: parks until the node is released, and returns its ticket.
    ///
    /// # Safety
    ///
    /// `node` is the caller's own node, linked into a list (so somebody will release it), and
    /// stays where it is until this returns.
    pub(crate) unsafe fn wait(node: *const Node, reason: WaitReason) -> bool {
        // SAFETY: the node is alive (caller's frame); `woken` is the one field shared unlocked.
        while !unsafe { (*node).woken.load(Ordering::Acquire) } {
            park_current(reason);
        }
        // The waker wrote the ticket before its release store of `woken`, seen set above.
        // SAFETY: so the waker is done with the node, and the ticket is written.
        unsafe { (*node).ticket }
    }

    /// Owner side: parks until the node is released or `deadline` passes; `true` if released.
    /// On `false` the node may still be linked: the owner must settle that under the lock
    /// around its list ([`Node::is_released`], [`List::remove`]) before its frame ends.
    ///
    /// # Safety
    ///
    /// As for [`Node::wait`].
    pub(crate) unsafe fn wait_until(
        node: *const Node,
        reason: WaitReason,
        deadline: Instant,
    ) -> bool {
        // SAFETY: the node is alive (caller's frame); `woken` is the one field shared unlocked.
        while !unsafe { (*node).woken.load(Ordering::Acquire) } {
            if Instant::now() >= deadline {
                return false;
            }
            crate::time::park_until(reason, deadline);
        }
        true
    }

    /// Whether the node was released (its owner may read this anytime; a `false` is final
    /// only under the lock around its list, where releases happen).
    ///
    /// # Safety
    ///
    /// `node` is alive.
    pub(crate) unsafe fn is_released(node: *const Node) -> bool {
        // SAFETY: alive by the contract; `woken` is atomic.
        unsafe { (*node).woken.load(Ordering::Acquire) }
    }

    /// Waker side: marks an unlinked node released (with a ticket or not) and returns the
    /// waiter to wake. The caller must wake it, and must not touch the node afterwards.
    ///
    /// # Safety
    ///
    /// The caller unlinked `node` from its list and is the only one who may release it.
    pub(crate) unsafe fn release(node: *mut Node, ticket: bool) -> Waiter {
        // SAFETY: by the contract, the node is alive (its owner waits for `woken`) and ours.
        unsafe {
            let waiter = (*node).waiter.take().expect("a node is released once");
            (*node).ticket = ticket;
            (*node).woken.store(true, Ordering::Release);
            waiter
        }
    }
}

/// A doubly linked FIFO of [`Node`]s; lives inside a lock.
pub(crate) struct List {
    head: *mut Node,
    tail: *mut Node,
}

// SAFETY: the nodes a list points to are only touched under the lock that owns the list (module
// invariant), whichever thread holds it.
unsafe impl Send for List {}

impl List {
    pub(crate) const fn new() -> List {
        List {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    /// Links `node` at the back (or at the front with `lifo`).
    ///
    /// # Safety
    ///
    /// `node` is alive, in no list, and stays put until it is released.
    pub(crate) unsafe fn push(&mut self, node: *mut Node, lifo: bool) {
        // SAFETY: `node` is valid by the contract; linked nodes are valid (module invariant).
        unsafe {
            if lifo {
                (*node).prev = ptr::null_mut();
                (*node).next = self.head;
                match self.head.is_null() {
                    true => self.tail = node,
                    false => (*self.head).prev = node,
                }
                self.head = node;
            } else {
                (*node).next = ptr::null_mut();
                (*node).prev = self.tail;
                match self.tail.is_null() {
                    true => self.head = node,
                    false => (*self.tail).next = node,
                }
                self.tail = node;
            }
        }
    }

    /// Unlinks and returns the first node waiting for `addr`, or null.
    pub(crate) fn pop_addr(&mut self, addr: usize) -> *mut Node {
        let mut node = self.head;
        // SAFETY: every linked node is valid (module invariant).
        unsafe {
            while !node.is_null() && (*node).addr != addr {
                node = (*node).next;
            }
            if !node.is_null() {
                self.unlink(node);
            }
        }
        node
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// `node` is linked into this list.
    pub(crate) unsafe fn remove(&mut self, node: *mut Node) {
        // SAFETY: by the contract.
        unsafe { self.unlink(node) };
    }

    /// Unlinks and returns the first node, or null.
    pub(crate) fn pop_front(&mut self) -> *mut Node {
        let node = self.head;
        if !node.is_null() {
            // SAFETY: `node` is linked here.
            unsafe { self.unlink(node) };
        }
        node
    }

    /// # Safety
    ///
    /// `node` is linked into this list.
    unsafe fn unlink(&mut self, node: *mut Node) {
        // SAFETY: `node` and its neighbours are linked here, hence valid.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            match prev.is_null() {
                true => self.head = next,
                false => (*prev).next = next,
            }
            match next.is_null() {
                true => self.tail = prev,
                false => (*next).prev = prev,
            }
            (*node).prev = ptr::null_mut();
            (*node).next = ptr::null_mut();
        }
    }
}
