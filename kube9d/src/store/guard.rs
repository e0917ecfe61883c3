//! sled panics on some damaged files instead of returning an error (e.g. `serialization.rs`,
//! writing back a page state it recovered wrong). Opening the store and its first full read run
//! under [`catching`], which turns such a panic into an error message and keeps the default
//! panic report (and its backtrace hint) off stderr: the person starting kube9d reads one
//! sentence saying what to do, not a crash.
//!
//! The panic hook is installed once and stays: it swallows panics only on a thread inside
//! [`catching`], and hands every other panic to the hook that was there before, so concurrent
//! callers (and tests) never lose each other's reports.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::path::Path;
use std::sync::Once;

thread_local! {
    /// `Some` while this thread runs inside [`catching`]: the caught panic's message, if any.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err` with the panic's message and where it was raised,
/// and prints nothing.
pub(super) fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = CAUGHT.with(|c| c.borrow_mut().replace(None));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let caught = CAUGHT.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    result.map_err(|_| {
        caught
            .flatten()
            .unwrap_or_else(|| "an internal check failed".to_string())
    })
}

fn install_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let swallowed = CAUGHT.with(|c| match c.try_borrow_mut() {
                Ok(mut slot) => match slot.as_mut() {
                    Some(message) => {
                        message.get_or_insert_with(|| describe(info));
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            });
            if !swallowed {
                previous(info);
            }
        }));
    });
}

/// `<message> (<crate>/src/<file>:<line>)`, the message cut to a readable length.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = (payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    let message = shorten(&message, 160);
    match info.location() {
        Some(at) => format!(
            "{message} ({}:{})",
            last_components(at.file(), 3),
            at.line()
        ),
        None => message,
    }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `sled-0.34.7/src/serialization.rs` rather than the whole path into the cargo registry.
fn last_components(file: &str, n: usize) -> String {
    let parts: Vec<_> = Path::new(file).components().collect();
    let tail = &parts[parts.len().saturating_sub(n)..];
    tail.iter()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_where_it_was_raised() {
        let err =
            catching(|| -> u32 { panic!("tried to serialize {:?}", "Uninitialized") }).unwrap_err();
        assert!(
            err.starts_with("tried to serialize \"Uninitialized\" ("),
            "{err}"
        );
        assert!(err.contains("store/guard.rs:"), "{err}");
        assert_eq!(catching(|| 7).unwrap(), 7);
    }

    #[test]
    fn nested_and_later_calls_each_see_their_own_panic() {
        let outer = catching(|| {
            let inner = catching(|| panic!("inner"));
            assert!(inner.unwrap_err().starts_with("inner"));
            panic!("outer")
        });
        assert!(outer.unwrap_err().starts_with("outer"));
        // Outside `catching`, panics still unwind as usual (and reach the previous hook).
        assert!(panic::catch_unwind(|| panic!("plain")).is_err());
    }

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(
            last_components(
                "/root/.cargo/registry/src/x/sled-0.34.7/src/serialization.rs",
                3
            ),
            "sled-0.34.7/src/serialization.rs"
        );
    }
}
