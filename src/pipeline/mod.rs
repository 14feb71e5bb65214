//! The data path between COPY and storage: cutting COPY output into frames
//! ([`framer`]), compressing and hashing them ([`codec`]), the memory
//! budget that sizes everything in flight ([`budget`]) and the pool of
//! frame buffers reused from one frame to the next ([`bufpool`]).

pub mod budget;
pub(crate) mod bufpool;
pub mod codec;
pub mod frame;
pub(crate) mod framer;

pub use budget::Budget;
pub use bufpool::{BufferPool, PooledBuf};
pub use codec::{
    decode_frame, encode_frame, frame_buffer_capacity, EncodedFrame, FrameBuffers, StreamDigest,
};
pub use framer::{Framer, PlainFrame};
