//! Tells the collector whether the build keeps frame pointers: its frame walk needs them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(gort_frame_pointers)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let kept = flags
        .split('\x1f')
        .filter_map(|flag| {
            flag.trim_start_matches("-C")
                .strip_prefix("force-frame-pointers")
        })
        .next_back()
        .is_some_and(|value| matches!(value, "" | "=yes" | "=y" | "=on" | "=true" | "=always"));
    if kept {
        println!("cargo::rustc-cfg=gort_frame_pointers");
    }
}
