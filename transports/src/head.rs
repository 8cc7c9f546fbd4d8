//! Parsing an HTTP/1.1 request head within the header limits, shared by
//! the HTTP listener and the WebSocket handshake.

/// What parsing the bytes read so far gave.
pub(crate) enum Parsed<T> {
    /// The whole head: what `take` made of it, and the head's length.
    Complete(T, usize),
    /// Not all of the head is in yet (and what is in is within the limit).
    Partial,
    /// Over `max_header_bytes` or `max_headers`: a 431.
    TooLarge,
    /// Not HTTP/1.x: a 400.
    Malformed(httparse::Error),
}

/// Headers parsed into slots on the stack up to this many; past it (a
/// larger `max_headers`) the slots are allocated.
const STACK_SLOTS: usize = 64;

/// Parses the head at the start of `read`, at most `max_headers` headers
/// and `max_header_bytes` long, and hands the parsed head to `take`.
pub(crate) fn parse<T>(
    read: &[u8],
    max_headers: usize,
    max_header_bytes: usize,
    take: impl FnOnce(&httparse::Request<'_, '_>) -> T,
) -> Parsed<T> {
    let slots = max_headers.max(1);
    let mut stack = [httparse::EMPTY_HEADER; STACK_SLOTS];
    let mut heap = Vec::new();
    let slots = if slots <= STACK_SLOTS {
        &mut stack[..slots]
    } else {
        heap.resize(slots, httparse::EMPTY_HEADER);
        &mut heap[..]
    };
    let mut request = httparse::Request::new(slots);
    match request.parse(read) {
        Ok(httparse::Status::Complete(len)) if len <= max_header_bytes => {
            Parsed::Complete(take(&request), len)
        }
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
            Parsed::TooLarge
        }
        Ok(httparse::Status::Partial) if read.len() >= max_header_bytes => Parsed::TooLarge,
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(e) => Parsed::Malformed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(n: usize) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..n {
            head.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    fn count(read: &[u8], max_headers: usize, max_bytes: usize) -> Option<usize> {
        match parse(read, max_headers, max_bytes, |r| r.headers.len()) {
            Parsed::Complete(n, len) => {
                assert_eq!(len, read.len());
                Some(n)
            }
            _ => None,
        }
    }

    #[test]
    fn headers_up_to_the_limit_parse_and_one_more_is_too_large() {
        for max in [1, 64, 100] {
            assert_eq!(count(&headers(max), max, 1 << 20), Some(max));
            assert!(matches!(
                parse(&headers(max + 1), max, 1 << 20, |_| ()),
                Parsed::TooLarge
            ));
        }
    }

    #[test]
    fn a_head_over_the_byte_limit_is_too_large_complete_or_not() {
        let head = headers(3);
        assert_eq!(count(&head, 64, head.len()), Some(3));
        assert!(matches!(
            parse(&head, 64, head.len() - 1, |_| ()),
            Parsed::TooLarge
        ));
        let partial = &head[..head.len() - 2];
        assert!(matches!(
            parse(partial, 64, head.len(), |_| ()),
            Parsed::Partial
        ));
        assert!(matches!(
            parse(partial, 64, partial.len(), |_| ()),
            Parsed::TooLarge
        ));
    }

    #[test]
    fn what_is_not_http_is_malformed() {
        assert!(matches!(
            parse(b"\x16\x03\x01 hello\r\n\r\n", 64, 8192, |_| ()),
            Parsed::Malformed(_)
        ));
    }
}
