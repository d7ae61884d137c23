//! Assertion helpers for the parsers' unit tests.

use crate::ConfigErrors;

/// One error as (line, key, message).
pub(crate) type Found = (Option<usize>, Option<String>, String);

/// Every error a parse reported; panics when it succeeded.
pub(crate) fn expect_errors<T>(result: Result<T, ConfigErrors>) -> Vec<Found> {
    match result {
        Ok(_) => panic!("expected errors"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect()
        }
    }
}

/// (line, key) of each error.
pub(crate) fn lines_and_keys(errs: &[Found]) -> Vec<(Option<usize>, Option<&str>)> {
    errs.iter().map(|e| (e.0, e.1.as_deref())).collect()
}
