//! List paging: `limit` (1–100, default 20) and `starting_after`, and the
//! list object every list answers with.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::body::query_pairs;
use super::error::ApiError;

/// Most items on one page.
pub const MAX_LIMIT: u32 = 100;
const DEFAULT_LIMIT: u32 = 20;

/// A parsed page request; also the paging parameters of every list in
/// the OpenAPI document.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageRequest {
    /// How many items to answer, 1 to 100.
    #[param(required = false, minimum = 1, maximum = 100, default = 20)]
    pub limit: u32,
    /// The id of the last item of the previous page (its `next_cursor`):
    /// this page starts after it.
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
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    #[schema(schema_with = list_tag)]
    object: &'static str,
    /// The page's items, in the list's order.
    data: Vec<T>,
    /// Whether items follow this page.
    has_more: bool,
    /// The `starting_after` of the next page, when there is one.
    next_cursor: Option<String>,
}

fn list_tag() -> utoipa::openapi::Object {
    super::openapi::tag("list")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_limits_are_the_enforced_ones() {
        let params = PageRequest::into_params(|| None);
        let limit = serde_json::to_value(&params[0]).unwrap();
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], MAX_LIMIT);
        assert_eq!(limit["schema"]["default"], DEFAULT_LIMIT);
    }
}
