//! Cursor pagination for the lists the admin API (and the CLI) read: a page
//! of items and an opaque cursor for the next one. A cursor is the sort key
//! of the last item shown, tagged with the list it belongs to and encoded
//! (base64url), so a caller passes it back unread and a cursor of one list
//! is refused by another. Keyset pagination: an item added or removed
//! between two pages neither shifts nor repeats the others.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::ServiceError;

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most items a page may hold.
pub const MAX_LIMIT: i64 = 200;

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page built from up to `limit + 1` fetched items: the extra one only
    /// says that another page exists. `key` is the sort key of an item.
    pub fn from_fetched(
        mut fetched: Vec<T>,
        request: &PageRequest,
        list: CursorList,
        key: impl Fn(&T) -> String,
    ) -> Self {
        let more = fetched.len() as i64 > request.limit;
        fetched.truncate(request.limit.max(0) as usize);
        let next_cursor = if more {
            fetched.last().map(|last| list.encode(&key(last)))
        } else {
            None
        };
        Self {
            items: fetched,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Which list a cursor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorList {
    Users,
    Clients,
    Grants,
    Audit,
    ApiKeys,
    Resources,
}

impl CursorList {
    fn tag(self) -> &'static str {
        match self {
            Self::Users => "u",
            Self::Clients => "c",
            Self::Grants => "g",
            Self::Audit => "a",
            Self::ApiKeys => "k",
            Self::Resources => "r",
        }
    }

    pub fn encode(self, key: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{key}", self.tag()))
    }

    /// The key inside `cursor`; `Invalid` when it is not one of this list's.
    pub fn decode(self, cursor: &str) -> Result<String, ServiceError> {
        let invalid = || ServiceError::Invalid("the cursor is not one this list gave out".into());
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        text.strip_prefix(self.tag())
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_string)
            .ok_or_else(invalid)
    }
}

/// What the caller asked for: where to continue and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: i64,
}

impl PageRequest {
    /// `limit` defaults to `DEFAULT_LIMIT` and must be 1 to `MAX_LIMIT`.
    pub fn new(cursor: Option<String>, limit: Option<i64>) -> Result<Self, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::Invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(Self {
            cursor: cursor.filter(|c| !c.is_empty()),
            limit,
        })
    }

    /// The first page of `limit` items.
    pub fn first(limit: i64) -> Self {
        Self {
            cursor: None,
            limit,
        }
    }

    /// The sort key to continue after, if a cursor was given.
    pub fn after(&self, list: CursorList) -> Result<Option<String>, ServiceError> {
        self.cursor.as_deref().map(|c| list.decode(c)).transpose()
    }

    /// How many to fetch: one more than shown, to know whether more exist.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// Splits a `NUMBER:TEXT` key (a timestamp and an id).
pub fn split_key(key: &str) -> Result<(i64, &str), ServiceError> {
    key.split_once(':')
        .and_then(|(n, rest)| Some((n.parse().ok()?, rest)))
        .ok_or_else(|| ServiceError::Invalid("the cursor is not one this list gave out".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_list() {
        let cursor = CursorList::Users.encode("alice:with:colons");
        assert!(!cursor.contains("alice"), "opaque: {cursor}");
        assert_eq!(
            CursorList::Users.decode(&cursor).unwrap(),
            "alice:with:colons"
        );
        assert!(matches!(
            CursorList::Clients.decode(&cursor),
            Err(ServiceError::Invalid(_))
        ));
        for junk in ["", "!!!", "dTpi\u{0}"] {
            assert!(CursorList::Audit.decode(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert!(PageRequest::new(None, Some(0)).is_err());
        assert!(PageRequest::new(None, Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(
            PageRequest::new(Some(String::new()), Some(3))
                .unwrap()
                .cursor,
            None
        );
    }

    #[test]
    fn the_extra_item_only_says_there_is_more() {
        let request = PageRequest::first(2);
        let page = Page::from_fetched(vec![1, 2, 3], &request, CursorList::Audit, |n| {
            n.to_string()
        });
        assert_eq!(page.items, [1, 2]);
        assert_eq!(
            CursorList::Audit
                .decode(page.next_cursor.as_deref().unwrap())
                .unwrap(),
            "2"
        );
        let last = Page::from_fetched(vec![1, 2], &request, CursorList::Audit, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn keys_split_into_number_and_text() {
        assert_eq!(split_key("12:ab:c").unwrap(), (12, "ab:c"));
        assert!(split_key("x:ab").is_err());
        assert!(split_key("12").is_err());
    }
}
