//! List paging: `limit` (1–100, default 20) and `starting_after`, and the
//! list object every list answers with.

use serde::Serialize;

use super::body::query_pairs;
use super::error::ApiError;

/// Most items on one page.
pub const MAX_LIMIT: u32 = 100;
const DEFAULT_LIMIT: u32 = 20;

/// A parsed page request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub starting_after: Option<String>,
}

impl PageRequest {
    /// From a query string that may hold only the paging parameters.
    pub fn parse(query: Option<&str>) -> Result<PageRequest, ApiError> {
        PageRequest::parse_with(query, &[]).map(|(page, _)| page)
    }

    /// From a query string holding the paging parameters and the list's
    /// own `filters`, which are answered as pairs.
    pub fn parse_with(
        query: Option<&str>,
        filters: &[&str],
    ) -> Result<(PageRequest, Vec<(String, String)>), ApiError> {
        let mut page = PageRequest {
            limit: DEFAULT_LIMIT,
            starting_after: None,
        };
        let allowed: Vec<&str> = ["limit", "starting_after"]
            .iter()
            .chain(filters)
            .copied()
            .collect();
        let mut rest = Vec::new();
        for (name, value) in query_pairs(query, &allowed)? {
            if filters.contains(&name.as_str()) {
                rest.push((name, value));
            } else if name == "limit" {
                page.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_request(format!("limit must be 1 to {MAX_LIMIT}"))
                            .with_param("limit")
                    })?;
            } else {
                page.starting_after = Some(value);
            }
        }
        Ok((page, rest))
    }

    /// The refusal of a cursor that names no item of the caller's list.
    pub fn unknown_cursor() -> ApiError {
        ApiError::invalid_request("starting_after names no item of this list")
            .with_param("starting_after")
    }
}

/// `{"object": "list", "data", "has_more", "next_cursor"}`.
#[derive(Debug, Serialize)]
pub struct List<T> {
    object: &'static str,
    data: Vec<T>,
    has_more: bool,
    next_cursor: Option<String>,
}

impl<T> List<T> {
    /// The page from `items`, fetched one past `limit`; `id` gives the
    /// cursor of an item.
    pub fn from_fetched(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> List<T> {
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if has_more {
            items.last().map(&id)
        } else {
            None
        };
        List {
            object: "list",
            data: items,
            has_more,
            next_cursor,
        }
    }
}
