//! The caller's frame and stack pointers and where it runs, read from the registers (no memory
//! is touched).
//!
//! Invariant: every function here is always inlined, so it answers the caller's own registers.

/// The caller's frame pointer (0 where the architecture is not supported).
#[inline(always)]
pub(crate) fn frame_pointer() -> usize {
    let fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; no memory or flags are touched.
    unsafe {
        std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; no memory or flags are touched.
    unsafe {
        std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fp = 0;
    }
    fp
}

/// The caller's stack pointer.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; no memory or flags are touched.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; no memory or flags are touched.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let marker = 0u8;
        sp = std::hint::black_box(&marker) as *const u8 as usize;
    }
    sp
}

/// An address inside the caller, just after the point of the call: symbolized like a return
/// address (one byte back), it names the caller's function and line, inlined frames included.
/// 0 where the architecture is not supported.
#[inline(always)]
pub(crate) fn program_counter() -> usize {
    let pc: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: computes an address; no memory or flags are touched.
    unsafe {
        std::arch::asm!("lea {}, [rip]", out(reg) pc, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: computes an address; no memory or flags are touched.
    unsafe {
        std::arch::asm!("adr {}, 2f", "2:", out(reg) pc, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        pc = 0;
    }
    pc
}
