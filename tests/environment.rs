//! `GORT_PROCS`, `GORT_STACK_SIZE`, `GORT_GC_INTERVAL` and `GORT_DEBUG` configure the runtime; a
//! bad value is an error that names the variable and the value (in child processes: the
//! environment is process-wide).

#[test]
fn a_bad_gort_procs_is_an_error_naming_it() {
    let name = "a_bad_gort_procs_is_an_error_naming_it";
    if gort_suite::is_child(name) {
        let err = gort::Runtime::builder().start().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"GORT_PROCS="lots" is invalid: not a whole number"#
        );
        // Lazily started runtimes report it through spawn's error.
        let spawn_err = gort::Builder::new().spawn(|| ()).unwrap_err();
        assert_eq!(spawn_err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(spawn_err.to_string().contains("GORT_PROCS"));
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_PROCS", "lots")]);
}

#[test]
fn a_bad_gort_stack_size_is_an_error_naming_it() {
    let name = "a_bad_gort_stack_size_is_an_error_naming_it";
    if gort_suite::is_child(name) {
        let err = gort::Runtime::builder().procs(1).start().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"GORT_STACK_SIZE="4K" is invalid: stack size 4096 bytes is below the minimum of 16384 bytes (16 KiB)"#
        );
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_STACK_SIZE", "4K")]);
}

#[test]
fn good_values_configure_the_runtime() {
    let name = "good_values_configure_the_runtime";
    if gort_suite::is_child(name) {
        // Explicit settings equal to the environment's: the runtime started from the
        // environment accepts them.
        gort::spawn(|| ()).join().unwrap();
        gort::Runtime::builder()
            .procs(3)
            .stack_size(64 * 1024)
            .start()
            .unwrap();
        assert!(gort::Runtime::builder().procs(2).start().is_err());
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_PROCS", "3"), ("GORT_STACK_SIZE", "64K")]);
}

/// In child `name` (with `variable=value`), starting the runtime fails with `expected`.
fn start_fails_in_child(name: &str, variable: &str, value: &str, expected: &str) {
    if gort_suite::is_child(name) {
        let err = gort::Runtime::builder().start().unwrap_err();
        assert_eq!(err.to_string(), expected);
        return;
    }
    gort_suite::assert_child_passes(name, &[(variable, value)]);
}

#[test]
fn a_bad_gc_interval_is_an_error_naming_it() {
    start_fails_in_child(
        "a_bad_gc_interval_is_an_error_naming_it",
        "GORT_GC_INTERVAL",
        "10",
        r#"GORT_GC_INTERVAL="10" is invalid: missing a unit: write it like 500ms, 2s or off"#,
    );
}

#[test]
fn a_bad_debug_option_is_an_error_naming_it() {
    start_fails_in_child(
        "a_bad_debug_option_is_an_error_naming_it",
        "GORT_DEBUG",
        "verbose",
        r#"GORT_DEBUG="verbose" is invalid: unknown option "verbose": the options are verify"#,
    );
}
