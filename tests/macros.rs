//! `go!`, `spawn!` and `#[gort::test]` as users write them.

use gort::go;

#[gort::test]
fn go_spawns_closures_paths_and_statements() {
    fn answer() -> u32 {
        42
    }
    let from_closure = go!(|| 1);
    let from_path = go!(answer);
    let captured = [1, 2, 3];
    let from_statements = go! {
        let total: i32 = captured.iter().sum();
        total * 10
    };
    let from_call = go!(answer());
    assert_eq!(from_closure.join().unwrap(), 1);
    assert_eq!(from_path.join().unwrap(), 42);
    assert_eq!(from_statements.join().unwrap(), 60);
    assert_eq!(from_call.join().unwrap(), 42);
}

#[gort::test]
fn spawn_takes_builder_options() -> std::io::Result<()> {
    let named = gort::spawn!(name = "named", || gort::current()
        .unwrap()
        .name()
        .map(str::to_owned))?;
    assert_eq!(named.join().unwrap().as_deref(), Some("named"));
    let sized = gort::spawn!(stack_size = 1 << 20, name = String::from("sized"), || 7)?;
    assert_eq!(sized.join().unwrap(), 7);
    let bad = gort::spawn!(stack_size = 1, || ());
    assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    Ok(())
}

#[gort::test]
fn gort_test_runs_in_a_goroutine() {
    assert!(gort::current().is_some());
    assert_eq!(gort::current().unwrap().name(), Some("main"));
}
