//! Why a text form (an AS path, a community, ...) could not be read: shared by the
//! files that read them, so none of them needs another.

/// Why a text form could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{text}`: {why}")]
pub struct TextError {
    what: &'static str,
    text: String,
    why: &'static str,
}

pub(super) fn bad(what: &'static str, text: &str, why: &'static str) -> TextError {
    TextError {
        what,
        text: text.to_string(),
        why,
    }
}
