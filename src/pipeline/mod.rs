//! The data path between COPY and storage: cutting COPY output into frames
//! ([`framer`]), compressing and hashing them ([`codec`]), and the memory
//! budget that sizes everything in flight ([`budget`]).

pub mod budget;
pub mod codec;
pub mod framer;

pub use budget::Budget;
pub use codec::{decode_frame, encode_frame, EncodedFrame, StreamDigest};
pub use framer::{Framer, PlainFrame};
