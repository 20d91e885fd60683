//! (in progress)

use crate::{DecodeError, Decoder, LineContext, Output};

pub(crate) fn decode(_text: &str, _decoder: &Decoder, _cx: &LineContext<'_>, _out: &mut Output) -> Result<(), DecodeError> {
    Err(DecodeError::WrongShape { expected: "supported" })
}
