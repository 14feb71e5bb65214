//! Redis backups through the same pipeline as PostgreSQL's: `target` (the
//! `redis://`/`rediss://` URL), `conn` (TCP or rustls, login, commands),
//! `resp` (the wire protocol, no I/O), `transfer` (the `SYNC` reply: its
//! preamble and the diskless end mark, no I/O), `rdb` (header and CRC64
//! checks as the file streams past), `records` (the scan method's key
//! records), `backup` (`pgkeep redis backup`), `drill` (`pgkeep redis
//! drill`: a scratch redis-server) and `restore`
//! (`pgkeep redis restore`: an RDB file, or the records loaded with
//! `RESTORE`). See docs/redis.md.

pub mod backup;
pub mod conn;
pub mod drill;
pub mod rdb;
pub mod records;
pub mod resp;
pub mod restore;
pub mod target;
pub mod transfer;

pub use backup::{redis_backup, Method, RedisBackupOptions};
pub use target::RedisTarget;
