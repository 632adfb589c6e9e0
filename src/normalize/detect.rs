//! Which format a document, an array element or an NDJSON line is.

use super::*;

/// Which format a document is: `Ok(None)` for an empty array or object (nothing to detect).
pub(super) fn detect<'r>(formats: &'r Registry, doc: &Doc) -> FieldResult<Option<&'r dyn FormatReader>> {
    match doc {
        Doc::Object(obj) => detect_object(formats, obj),
        Doc::Array(items) => match items.first() {
            None => Ok(None),
            Some(item) => detect_object(formats, &RawObject::parse(*item, "[0]")?),
        },
    }
}

/// Which format an object is: the one it is a page of, else the one it is a record of.
pub(super) fn detect_object<'r>(formats: &'r Registry, obj: &RawObject) -> FieldResult<Option<&'r dyn FormatReader>> {
    if obj.is_empty() {
        return Ok(None);
    }
    let pages: Vec<_> = formats.iter().filter(|p| p.is_page(obj)).collect();
    let found = if pages.is_empty() { formats.iter().filter(|p| p.is_record(obj)).collect() } else { pages };
    match found.as_slice() {
        [one] => Ok(Some(*one)),
        [] => Err(FieldError::new(
            "",
            format!("the document matches no known format (tried {})", formats.ids().join(", ")),
        )),
        many => Err(FieldError::new(
            "",
            format!(
                "the document matches more than one format ({}); pass provider= to choose",
                many.iter().map(|p| p.id()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// The format of one element of a source (an element of a top-level array, or an NDJSON
/// line), given the format `current` of the elements before it: the forced format; else
/// `current` when the element is one of its pages or records (no search); else the element's
/// own format when it has one; else `current`, whose reader then names what is wrong with it.
pub(super) fn element_format<'r>(
    ctx: &Ctx<'_, 'r>,
    current: &'r dyn FormatReader,
    obj: &RawObject,
) -> &'r dyn FormatReader {
    if let Some(forced) = ctx.forced {
        return forced;
    }
    if current.is_record(obj) || current.is_page(obj) {
        return current;
    }
    detect_object(ctx.formats, obj).ok().flatten().unwrap_or(current)
}

pub(super) fn same(a: &dyn FormatReader, b: &dyn FormatReader) -> bool {
    a.id() == b.id()
}
