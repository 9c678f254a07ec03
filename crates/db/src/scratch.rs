//! A database of a test's own on the test server, for tests of this crate and of the
//! crates above it (feature `testing`): made empty, removed by the test (or by whoever
//! cleans up after one that panicked).

use crate::{Db, DbError};

/// The test server's database that test databases are made from and removed through:
/// `CROSSDOCK_TEST_DATABASE_URL`, or the development one (`scripts/services.sh`).
pub fn admin_url() -> String {
    std::env::var("CROSSDOCK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://crossdock:crossdock@127.0.0.1:5432/crossdock".into())
}

/// An empty database named `crossdock_test_<16 hex digits>` (the random end of a UUIDv7)
/// on the test server.
#[derive(Debug, Clone)]
pub struct ScratchDatabase {
    /// Where it is: the admin URL with its name.
    pub url: String,
    admin: String,
    name: String,
}

impl ScratchDatabase {
    /// Makes a new one.
    pub async fn create() -> Result<Self, DbError> {
        let admin = admin_url();
        let name = format!(
            "crossdock_test_{}",
            &uuid::Uuid::now_v7().simple().to_string()[16..]
        );
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or_else(|| DbError::Url(format!("{admin} names no database")))?;
        let url = format!("{base}/{name}");
        Db::create_database(&admin, &name).await?;
        Ok(Self { url, admin, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes it, closing whatever connections are still open to it.
    pub async fn remove(&self) -> Result<(), DbError> {
        Db::drop_database(&self.admin, &self.name).await
    }
}
