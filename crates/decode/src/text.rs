//! (in progress)

use crate::{Decoder, LineContext, Output};

pub(crate) fn decode(_text: &str, _decoder: &Decoder, _cx: &LineContext<'_>, _out: &mut Output) -> bool {
    false
}
