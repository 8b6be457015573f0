//! Test isolation for every crate's tests: a fresh database and a unique NATS prefix per test,
//! against the real servers (`SWITCHYARD_TEST_NATS_URL`, `SWITCHYARD_TEST_DATABASE_URL`).

use tokio_postgres::NoTls;

/// NATS for tests.
pub fn nats_url() -> String {
    std::env::var("SWITCHYARD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A connection string for an existing database on the test server, used to create others.
pub fn admin_database_url() -> String {
    std::env::var("SWITCHYARD_TEST_DATABASE_URL").unwrap_or_else(|_| {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        format!("host=/var/run/postgresql user={user} dbname=postgres")
    })
}

/// A short unique name (lower-case letters and digits) for prefixes and databases.
pub fn unique(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{tag}{}", &id[..12])
}

/// Creates an empty database and returns its connection string.
pub async fn fresh_database(tag: &str) -> Result<String, tokio_postgres::Error> {
    let admin = admin_database_url();
    let (client, connection) = tokio_postgres::connect(&admin, NoTls).await?;
    tokio::spawn(connection);
    let name = unique(&format!("sy_{tag}_"));
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    Ok(with_dbname(&admin, &name))
}

/// Replaces (or adds) `dbname` in a key=value or URL connection string.
fn with_dbname(conn: &str, name: &str) -> String {
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let (base, query) = conn
            .split_once('?')
            .map_or((conn, None), |(b, q)| (b, Some(q)));
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let base = match base[scheme_end..].find('/') {
            Some(slash) => &base[..scheme_end + slash],
            None => base,
        };
        match query {
            Some(q) => format!("{base}/{name}?{q}"),
            None => format!("{base}/{name}"),
        }
    } else {
        let mut parts: Vec<String> = conn
            .split_whitespace()
            .filter(|p| !p.starts_with("dbname="))
            .map(str::to_owned)
            .collect();
        parts.push(format!("dbname={name}"));
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn database_names_are_swapped_in_both_forms() {
        assert_eq!(
            with_dbname("host=/run user=root dbname=postgres", "x"),
            "host=/run user=root dbname=x"
        );
        assert_eq!(
            with_dbname("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://u@h", "x"), "postgres://u@h/x");
    }
}

/// The three Standard Webhooks headers for `body`, signed with `secret` (`whsec_…`).
pub fn signed_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    crate::signing::SigningKey::from_secret(&secrecy::SecretString::from(secret.to_owned()))
        .unwrap_or_else(|e| panic!("test secret {secret:?} is not valid: {e}"))
        .headers(id, timestamp, body)
}

/// A random `whsec_…` secret.
pub fn random_secret() -> String {
    use base64::Engine as _;
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A nats-server of the test's own (for tests that stop the bus), killed when dropped.
#[derive(Debug)]
pub struct PrivateNats {
    child: std::process::Child,
    store: std::path::PathBuf,
    pub url: String,
}

impl PrivateNats {
    /// Starts `nats-server -js` on a free loopback port and waits until it accepts connections.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(None, &[]).await
    }

    /// Like [`start`](Self::start), with `extra` appended to the server's configuration file (e.g.
    /// an `authorization { … }` block) and `env` set for the server, which resolves `$VAR`
    /// references in its configuration from it (so passwords need not be written to disk).
    pub async fn start_with_config(extra: &str, env: &[(String, String)]) -> std::io::Result<Self> {
        Self::start_with(Some(extra), env).await
    }

    async fn start_with(extra: Option<&str>, env: &[(String, String)]) -> std::io::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let store = std::env::temp_dir().join(unique("sy-nats-"));
        let bin =
            std::env::var("SWITCHYARD_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        let mut command = std::process::Command::new(&bin);
        match extra {
            None => {
                command
                    .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                    .arg(&store);
            }
            Some(extra) => {
                std::fs::create_dir_all(&store)?;
                let file = store.join("server.conf");
                let text = format!(
                    "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n{extra}\n",
                    store.join("js").display().to_string()
                );
                std::fs::write(&file, text)?;
                command.arg("-c").arg(&file);
            }
        }
        let child = command
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {bin}: {e}")))?;
        let server = Self {
            child,
            store,
            url: format!("nats://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Err(std::io::Error::other(
            "private nats-server did not start within 5 s",
        ))
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Deletes the streams (and with them the consumers) a test created under `prefix`.
pub async fn delete_streams(nats_url: &str, prefix: &str) {
    let Ok(client) = async_nats::connect(nats_url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let names = crate::bus::Names::new(prefix);
    for kind in crate::bus::StreamKind::ALL {
        let _ = js.delete_stream(names.stream(kind)).await;
    }
}

/// Drops a database made by [`fresh_database`] (closing what is still connected to it).
pub async fn drop_database(url: &str) {
    let Some(name) = url
        .split_whitespace()
        .find_map(|p| p.strip_prefix("dbname="))
        .map(str::to_owned)
        .or_else(|| {
            url.rsplit('/')
                .next()
                .map(|t| t.split('?').next().unwrap_or(t).to_owned())
        })
    else {
        return;
    };
    if let Ok((client, connection)) = tokio_postgres::connect(&admin_database_url(), NoTls).await {
        tokio::spawn(connection);
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

/// A file from the vendors' published specs and samples, kept in the repository under
/// `testdata/vendor/` with their licences and provenance (its README lists each file).
pub fn vendor_file(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/vendor")
        .join(relative)
}

/// A JSON (or YAML) file under the vendor directory, parsed.
pub fn vendor_json(relative: &str) -> serde_json::Value {
    let file = vendor_file(relative);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
