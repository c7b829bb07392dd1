//! The other distributions of a plugin that the caller of a `handle` request may read, for
//! `content.find-at`: a registry's cross-repository blob mount takes a blob the caller can pull
//! from one repository into the one it pushes to, without sending its bytes again.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::handle::may_modify;
use super::{ContentApp, Matched};
use crate::auth;
use crate::plugins::{ContentScope, LoadedPlugin, OtherDistributions};

/// The distributions of `plugin` as `caller` may read them: one without a content guard, or one
/// whose repository the caller may modify (who may push there may pull there). A guard that
/// would let the caller through otherwise (a certificate, a header) is not asked: such a mount
/// falls back to an upload, which the registry protocol allows.
pub(super) struct Readable {
    pub app: Arc<ContentApp>,
    pub plugin: Arc<LoadedPlugin>,
    pub caller: Option<auth::User>,
}

impl OtherDistributions for Readable {
    fn readable<'a>(
        &'a self,
        base_path: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<ContentScope>>> {
        Box::pin(async move {
            let found =
                super::find_distribution(&self.app, base_path, Some(&self.plugin.info.name))
                    .await
                    .map_err(|error| anyhow::anyhow!("finding {base_path:?}: {error:?}"))?;
            let Some((matched, rest)) = found else {
                return Ok(None);
            };
            if !rest.is_empty() || matched.base_path != base_path {
                return Ok(None);
            }
            if matched.content_guard.is_some() || matched.private {
                let may = may_modify(&self.app, &matched, self.caller.as_ref())
                    .await
                    .map_err(|error| anyhow::anyhow!("checking {base_path:?}: {error:?}"))?;
                if may != Some(true) {
                    return Ok(None);
                }
            }
            let mut matched = Matched::clone(&matched);
            super::resolve_version(&self.app, &mut matched)
                .await
                .map_err(|error| anyhow::anyhow!("resolving {base_path:?}: {error:?}"))?;
            let (Some(repository_id), Some(version)) = (&matched.repository_id, matched.version)
            else {
                return Ok(None);
            };
            Ok(Some(ContentScope::new(
                self.app.db.clone(),
                &self.plugin,
                repository_id,
                version,
            )))
        })
    }
}
