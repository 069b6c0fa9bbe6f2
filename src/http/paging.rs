//! Server-driven paging of collections (spec/README.md "Collections and paging"): a page of
//! `$top` entries (or the collection's default), and an `@odata.nextLink` carrying an opaque
//! `$skiptoken` while entries remain.
//!
//! A skiptoken is the offset of the next page, signed (HMAC-SHA256) with a key drawn when the
//! process starts, and bound to the tenant and collection it was issued for. A token of an
//! earlier process is expired, one that does not verify (edited, forged, or issued for another
//! collection) is refused: both `400`, as Graph refuses page tokens it does not accept.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};
use super::extract::GraphRequest;

/// What a collection's pages look like, and how its errors are worded.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// Entries per page without `$top`.
    pub default_size: usize,
    /// Largest `$top`; `None`: any.
    pub max_size: Option<usize>,
    /// Directory collections answer with Entra's codes (`Request_UnsupportedQuery`,
    /// `Directory_ExpiredPageToken`, `Request_BadRequest`).
    pub directory: bool,
}

/// `/users`, `/groups`, `/groups/{id}/members`: 100 by default, 999 at most (user-list,
/// group-list, group-list-members).
pub const DIRECTORY: Paging = Paging {
    default_size: 100,
    max_size: Some(999),
    directory: true,
};

/// `/external/connections`: Graph documents no paging; gcemu pages by 100 (more than the 30
/// connections a tenant holds by default) and honours any `$top`.
pub const CONNECTIONS: Paging = Paging {
    default_size: 100,
    max_size: None,
    directory: false,
};

struct Signer {
    epoch: u64,
    key: hmac::Key,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let seed = uuid::Uuid::new_v4();
        let key_bytes = [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat();
        Signer {
            epoch: seed.as_u64_pair().0,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
        }
    })
}

const MAC_BYTES: usize = 16;

fn sign(payload: &str, scope: &str) -> Vec<u8> {
    let signed = format!("{payload}|{scope}");
    hmac::sign(&signer().key, signed.as_bytes()).as_ref()[..MAC_BYTES].to_vec()
}

/// The skiptoken for the page that starts at `offset` of the collection `scope`.
pub fn skiptoken(scope: &str, offset: usize) -> String {
    let payload = format!("{:x}.{offset}", signer().epoch);
    let mut bytes = payload.clone().into_bytes();
    bytes.extend(sign(&payload, scope));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Where a page starts and how many entries it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub size: usize,
}

impl Paging {
    /// Reads `$top` and `$skiptoken` for the collection `scope` (tenant and collection).
    pub fn page(
        &self,
        top: Option<usize>,
        skiptoken: Option<&str>,
        scope: &str,
    ) -> Result<Page, ApiError> {
        let size = match (top, self.max_size) {
            (None, _) => self.default_size,
            (Some(top), Some(max)) if top == 0 || top > max => {
                return Err(ApiError::new(
                    if self.directory {
                        ErrorCode::RequestUnsupportedQuery
                    } else {
                        ErrorCode::InvalidRequest
                    },
                    format!(
                    "Invalid page size specified: '{top}'. Must be between 1 and {max} inclusive."
                ),
                ))
            }
            (Some(top), _) => top,
        };
        let offset = match skiptoken {
            None => 0,
            Some(token) => self.offset(token, scope)?,
        };
        Ok(Page { offset, size })
    }

    fn offset(&self, token: &str, scope: &str) -> Result<usize, ApiError> {
        let refused = || {
            ApiError::new(
                if self.directory { ErrorCode::RequestBadRequest } else { ErrorCode::InvalidRequest },
                "The $skiptoken is not valid for this collection: follow @odata.nextLink as it was given, without changing it.",
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| refused())?;
        if bytes.len() <= MAC_BYTES {
            return Err(refused());
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_BYTES);
        let payload = std::str::from_utf8(payload).map_err(|_| refused())?;
        let (epoch, offset) = payload.split_once('.').ok_or_else(refused)?;
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| refused())?;
        let offset: usize = offset.parse().map_err(|_| refused())?;
        if epoch != signer().epoch {
            return Err(ApiError::new(
                if self.directory { ErrorCode::DirectoryExpiredPageToken } else { ErrorCode::InvalidRequest },
                "The specified page token value has expired and can no longer be included in your request.",
            ));
        }
        let expected = sign(payload, scope);
        // Compared without an early exit, so timing tells nothing about the key.
        let differs = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 || expected.len() != mac.len() {
            return Err(refused());
        }
        Ok(offset)
    }
}

impl Page {
    /// The entries of the page, cut from the whole list (build their JSON after cutting).
    pub fn window<'a, T>(&self, entries: &'a [T]) -> &'a [T] {
        let start = self.offset.min(entries.len());
        let end = start.saturating_add(self.size).min(entries.len());
        &entries[start..end]
    }
}

/// Puts the page's `value` into `body` and, when entries of the `total` remain after it, an
/// `@odata.nextLink`: the request's own URL (`relative` to the version root, path segments
/// already encoded, with its query options but the skiptoken) with the next page's token.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    graph: &GraphRequest,
    relative: &str,
    raw_query: Option<&str>,
    scope: &str,
    page: Page,
    total: usize,
    value: Vec<Value>,
    body: &mut serde_json::Map<String, Value>,
) {
    let next = page.offset.saturating_add(value.len());
    body.insert("value".into(), Value::Array(value));
    if page.size > 0 && next < total {
        let mut query: Vec<&str> = raw_query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| {
                let name = pair
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                !pair.is_empty()
                    && name != "$skiptoken"
                    && name != "%24skiptoken"
                    && name != "skiptoken"
            })
            .collect();
        let token = format!("$skiptoken={}", skiptoken(scope, next));
        query.push(&token);
        body.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{}/{relative}?{}", graph.base_url, query.join("&"))),
        );
    }
}

/// A path segment as it goes into a link (ids may hold spaces, `?`, `#`, `%`).
pub fn segment(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_for_their_collection_only() {
        let token = skiptoken("t1/users", 200);
        assert_eq!(
            DIRECTORY.page(None, Some(&token), "t1/users").unwrap(),
            Page {
                offset: 200,
                size: 100
            }
        );
        let refused = DIRECTORY.page(None, Some(&token), "t2/users").unwrap_err();
        assert_eq!(refused.code, ErrorCode::RequestBadRequest);
        let mut forged = URL_SAFE_NO_PAD.decode(&token).unwrap();
        forged[17] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(forged);
        assert!(DIRECTORY.page(None, Some(&forged), "t1/users").is_err());
        for garbage in ["", "x", "%%%", "AAAA", &"A".repeat(10_000)] {
            assert!(
                DIRECTORY.page(None, Some(garbage), "t1/users").is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn tokens_of_another_process_have_expired() {
        let payload = format!("{:x}.100", signer().epoch.wrapping_add(1));
        let mut bytes = payload.clone().into_bytes();
        bytes.extend(sign(&payload, "t/users"));
        let stale = URL_SAFE_NO_PAD.encode(bytes);
        let error = DIRECTORY.page(None, Some(&stale), "t/users").unwrap_err();
        assert_eq!(error.code, ErrorCode::DirectoryExpiredPageToken);
    }

    #[test]
    fn page_sizes_follow_the_collection() {
        assert_eq!(DIRECTORY.page(Some(999), None, "s").unwrap().size, 999);
        assert_eq!(
            DIRECTORY.page(Some(1000), None, "s").unwrap_err().code,
            ErrorCode::RequestUnsupportedQuery
        );
        assert_eq!(
            DIRECTORY.page(Some(0), None, "s").unwrap_err().code,
            ErrorCode::RequestUnsupportedQuery
        );
        assert_eq!(CONNECTIONS.page(Some(5000), None, "s").unwrap().size, 5000);
    }
}
