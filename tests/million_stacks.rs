//! A million goroutine stacks reserved at once live in the span heap's few arena mappings:
//! `MADV_GUARD_INSTALL` guards do not split mappings, so `vm.max_map_count` (65530 here) does not
//! bound the number of stacks.

use gort::heap::{self, SpanKind};
use gort::stack::{self, GuardMode, Stack, StackSize};

#[test]
fn a_million_stacks_add_only_a_handful_of_mappings() {
    if stack::guard_mode() != GuardMode::Madvise {
        eprintln!(
            "skipped: this kernel has no MADV_GUARD_INSTALL, so each stack costs two mappings"
        );
        return;
    }
    let before = gort_suite::mapping_count();
    let stacks: Vec<Stack> = (0..1_000_000)
        .map(|i| Stack::new(StackSize::DEFAULT).unwrap_or_else(|err| panic!("stack {i}: {err}")))
        .collect();
    let after = gort_suite::mapping_count();
    assert!(
        after <= before + 6,
        "{} mappings before a million stacks, {after} after",
        before
    );
    for stack in stacks.iter().step_by(9_973) {
        let info = heap::span_of(stack.top() - 1).expect("every stack is an allocated span");
        assert_eq!(
            (info.kind(), info.base()),
            (SpanKind::Stack, stack.guard().start)
        );
    }
    drop(stacks);
    assert!(gort_suite::mapping_count() <= before + 6);
}
