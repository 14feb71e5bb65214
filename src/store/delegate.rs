//! [`delegate_object_store!`]: an `ObjectStore` impl for a wrapper type
//! whose `inner: Arc<dyn ObjectStore>` serves every call the wrapper does
//! not write itself. Wrappers (the bandwidth pacer here; the tests'
//! fault-injecting and recording stores) then state only what they change:
//! `put_opts` and `put_multipart_opts`.

/// `delegate_object_store!(Type, { async fn put_opts(..) {..} async fn
/// put_multipart_opts(..) {..} })` implements `ObjectStore` for `Type`
/// with the given methods and forwards reads, lists, deletes, copies and
/// renames to `self.inner`.
#[macro_export]
macro_rules! delegate_object_store {
    ($ty:ty, { $($own:tt)* }) => {
        #[$crate::store::delegate::async_trait]
        impl ::object_store::ObjectStore for $ty {
            $($own)*

            async fn get_opts(
                &self,
                location: &::object_store::path::Path,
                options: ::object_store::GetOptions,
            ) -> ::object_store::Result<::object_store::GetResult> {
                self.inner.get_opts(location, options).await
            }

            async fn get_ranges(
                &self,
                location: &::object_store::path::Path,
                ranges: &[::std::ops::Range<u64>],
            ) -> ::object_store::Result<::std::vec::Vec<::bytes::Bytes>> {
                self.inner.get_ranges(location, ranges).await
            }

            fn delete_stream(
                &self,
                locations: ::futures::stream::BoxStream<
                    'static,
                    ::object_store::Result<::object_store::path::Path>,
                >,
            ) -> ::futures::stream::BoxStream<'static, ::object_store::Result<::object_store::path::Path>>
            {
                self.inner.delete_stream(locations)
            }

            fn list(
                &self,
                prefix: Option<&::object_store::path::Path>,
            ) -> ::futures::stream::BoxStream<'static, ::object_store::Result<::object_store::ObjectMeta>>
            {
                self.inner.list(prefix)
            }

            fn list_with_offset(
                &self,
                prefix: Option<&::object_store::path::Path>,
                offset: &::object_store::path::Path,
            ) -> ::futures::stream::BoxStream<'static, ::object_store::Result<::object_store::ObjectMeta>>
            {
                self.inner.list_with_offset(prefix, offset)
            }

            async fn list_with_delimiter(
                &self,
                prefix: Option<&::object_store::path::Path>,
            ) -> ::object_store::Result<::object_store::ListResult> {
                self.inner.list_with_delimiter(prefix).await
            }

            async fn copy_opts(
                &self,
                from: &::object_store::path::Path,
                to: &::object_store::path::Path,
                options: ::object_store::CopyOptions,
            ) -> ::object_store::Result<()> {
                self.inner.copy_opts(from, to, options).await
            }

            async fn rename_opts(
                &self,
                from: &::object_store::path::Path,
                to: &::object_store::path::Path,
                options: ::object_store::RenameOptions,
            ) -> ::object_store::Result<()> {
                self.inner.rename_opts(from, to, options).await
            }
        }
    };
}

#[doc(hidden)]
pub use async_trait::async_trait;
