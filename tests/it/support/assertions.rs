//! Assertions that name what was expected and show what came instead: the exit code a
//! process ends with (every exit-code check goes through [`assert_exit`], so codes are
//! named, never numbers) and text that must or must not appear in output.

pub use sikkerkey_agent::exit::Exit;

/// Panics, showing `output`, unless the process exited with `expected`. `None` (killed by
/// a signal) never matches.
#[track_caller]
pub fn assert_exit(code: Option<i32>, expected: Exit, output: &str) {
    assert_eq!(
        code,
        Some(expected.code()),
        "exit code (expected {expected:?}); output:\n{output}"
    );
}

/// Panics, showing `text`, unless it contains `needle`.
#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

/// Panics, showing `text`, if it contains `needle`.
#[track_caller]
pub fn assert_lacks(text: &str, needle: &str) {
    assert!(
        !text.contains(needle),
        "{needle:?} must not appear in:\n{text}"
    );
}

/// Panics unless less than `limit` has passed since `started`.
#[track_caller]
pub fn assert_took_less_than(started: std::time::Instant, limit: std::time::Duration) {
    let took = started.elapsed();
    assert!(took < limit, "took {took:?}, more than {limit:?}");
}
