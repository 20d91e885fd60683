//! (in progress)

use crate::{DecodeError, Decoder, LineContext, Output};

pub(crate) fn decode_traces(_text: &str, _decoder: &Decoder, _cx: &LineContext<'_>, _out: &mut Output) -> Result<(), DecodeError> {
    Err(DecodeError::WrongShape { expected: "OTLP traces" })
}

pub(crate) fn decode_logs(_text: &str, _decoder: &Decoder, _cx: &LineContext<'_>, _out: &mut Output) -> Result<(), DecodeError> {
    Err(DecodeError::WrongShape { expected: "OTLP logs" })
}
