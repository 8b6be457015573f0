//! Value types that parsing checks, so a configuration that cannot be right never loads: an
//! HTTP(S) URL is one from the moment it is read.

use serde::Deserialize;

/// An absolute `http://` or `https://` URL, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(String);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let parsed = url::Url::parse(&text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "{text:?} must be an http:// or https:// URL with a host"
            ));
        }
        Ok(Self(text))
    }
}

impl HttpUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
