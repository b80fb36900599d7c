//! The tables that span messages: `messages/mod.rs` (modules, `ApiKey`, `RequestKind`,
//! `ResponseKind`) and `error_code.rs`.

use crate::emit::HEADER;
use crate::model::{snake, MessageDef};
use std::fmt::Write;

struct Api<'a> {
    key: i16,
    variant: String,
    req: &'a MessageDef,
    resp: &'a MessageDef,
}

pub fn messages_mod(messages: &[MessageDef]) -> Result<String, String> {
    let mut apis: Vec<Api<'_>> = Vec::new();
    for req in messages.iter().filter(|m| m.spec.kind == "request") {
        let key = req
            .spec
            .api_key
            .ok_or_else(|| format!("{} has no apiKey", req.spec.name))?;
        let resp = messages
            .iter()
            .find(|m| m.spec.kind == "response" && m.spec.api_key == Some(key))
            .ok_or_else(|| format!("{} has no response", req.spec.name))?;
        if resp.spec.valid_versions != req.spec.valid_versions {
            return Err(format!(
                "{}: request and response versions differ",
                req.spec.name
            ));
        }
        let variant = req
            .spec
            .name
            .strip_suffix("Request")
            .ok_or_else(|| format!("{} does not end in Request", req.spec.name))?
            .to_string();
        apis.push(Api {
            key,
            variant,
            req,
            resp,
        });
    }
    apis.sort_by_key(|a| a.key);

    let mut out = String::from(HEADER);
    out.push_str(
        "\n//! Every message type, one module each, and the tables over them: [`ApiKey`],\n\
         //! [`RequestKind`] and [`ResponseKind`].\n\n",
    );
    out.push_str(
        "use crate::error::{DecodeError, DecodeErrorKind, EncodeError};\n\
         use crate::protocol::{Decode, Encode, Request, Response, VersionRange};\n\
         use crate::wire::Decoder;\nuse bytes::BytesMut;\n\n\
         pub(crate) mod support;\n\n",
    );
    for m in messages {
        let module = snake(&m.spec.name);
        let _ = writeln!(out, "pub mod {module};\npub use {module}::{};", m.spec.name);
    }

    // ApiKey.
    out.push_str(
        "\n/// The API keys of every client-facing request, with their version ranges.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(i16)]\n#[non_exhaustive]\npub enum ApiKey {\n",
    );
    for a in &apis {
        let _ = writeln!(
            out,
            "/// `{}` (key {}), versions {}.\n{} = {},",
            a.variant, a.key, a.req.spec.valid_versions, a.variant, a.key
        );
    }
    out.push_str("}\n\nimpl ApiKey {\n/// Every API key, in key order.\npub const ALL: &'static [ApiKey] = &[");
    for a in &apis {
        let _ = write!(out, "ApiKey::{},", a.variant);
    }
    out.push_str(
        "];\n\n/// The key as sent on the wire.\npub const fn key(self) -> i16 { self as i16 }\n\n",
    );
    out.push_str("/// The API key for a wire value, if this codec knows it.\npub const fn from_key(key: i16) -> Option<ApiKey> { match key {");
    for a in &apis {
        let _ = write!(out, "{} => Some(ApiKey::{}),", a.key, a.variant);
    }
    out.push_str("_ => None } }\n\n/// Kafka's name of the API.\npub const fn name(self) -> &'static str { match self {");
    for a in &apis {
        let _ = write!(out, "ApiKey::{} => \"{}\",", a.variant, a.variant);
    }
    out.push_str("} }\n\n/// The versions this codec encodes and decodes.\npub const fn versions(self) -> VersionRange { match self {");
    for a in &apis {
        let v = a.req.spec.valid_versions;
        let _ = write!(
            out,
            "ApiKey::{} => VersionRange::new({}, {}),",
            a.variant, v.min, v.max
        );
    }
    out.push_str("} }\n\n/// The first flexible version of the request, if any.\npub const fn first_flexible(self) -> Option<i16> { match self {");
    for a in &apis {
        let f = a
            .req
            .spec
            .flexible_versions
            .intersect(&a.req.spec.valid_versions);
        if f.is_empty() {
            let _ = write!(out, "ApiKey::{} => None,", a.variant);
        } else {
            let _ = write!(out, "ApiKey::{} => Some({}),", a.variant, f.min);
        }
    }
    out.push_str(
        "} }\n\n/// The request header version for a request of this version: 2 when the \
         request is flexible, else 1.\npub const fn request_header_version(self, version: i16) -> i16 {\n\
         match self.first_flexible() { Some(f) if version >= f => 2, _ => 1 } }\n\n",
    );
    out.push_str(
        "/// The response header version for a response of this version: 1 when the response \
         is flexible, else 0; ApiVersions responses always use 0, so that a client can read \
         one from a broker that does not support its request version.\n\
         pub const fn response_header_version(self, version: i16) -> i16 { match self {\n",
    );
    for a in &apis {
        let f = a
            .resp
            .spec
            .flexible_versions
            .intersect(&a.resp.spec.valid_versions);
        if a.variant == "ApiVersions" || f.is_empty() {
            let _ = write!(out, "ApiKey::{} => 0,", a.variant);
        } else {
            let _ = write!(
                out,
                "ApiKey::{} => if version >= {} {{ 1 }} else {{ 0 }},",
                a.variant, f.min
            );
        }
    }
    out.push_str("} }\n}\n\n");
    out.push_str(
        "impl TryFrom<i16> for ApiKey {\n type Error = DecodeError;\n\
         fn try_from(key: i16) -> Result<Self, DecodeError> {\n\
         ApiKey::from_key(key).ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownApiKey(key))) } }\n\n\
         impl std::fmt::Display for ApiKey {\n fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n\
         write!(f, \"{}({})\", self.name(), self.key()) } }\n\n",
    );

    // Request / Response impls.
    for a in &apis {
        let _ = writeln!(
            out,
            "impl Request for {} {{ const API_KEY: ApiKey = ApiKey::{}; type Response = {}; }}\n\
             impl Response for {} {{ const API_KEY: ApiKey = ApiKey::{}; }}",
            a.req.spec.name, a.variant, a.resp.spec.name, a.resp.spec.name, a.variant
        );
    }

    for (kind, pick, what) in [
        ("RequestKind", true, "request"),
        ("ResponseKind", false, "response"),
    ] {
        let name_of = |a: &Api<'_>| {
            if pick {
                a.req.spec.name.clone()
            } else {
                a.resp.spec.name.clone()
            }
        };
        let _ = writeln!(
            out,
            "\n/// Any {what}, for code that handles {what}s by API key at run time (a proxy, a \
             fake broker, a dissector).\n#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub enum {kind} {{"
        );
        for a in apis.iter() {
            let _ = writeln!(
                out,
                "/// A `{}`.\n{}({}),",
                name_of(a),
                a.variant,
                name_of(a)
            );
        }
        let _ = writeln!(out, "}}\n\nimpl {kind} {{\n/// The API key of the {what}.\npub fn api_key(&self) -> ApiKey {{ match self {{");
        for a in &apis {
            let _ = write!(out, "{kind}::{}(_) => ApiKey::{},", a.variant, a.variant);
        }
        let _ = writeln!(
            out,
            "}} }}\n\n/// The {what} inside, to downcast to its own type (by its API key): \
             code that reads a few kinds this way does not reach every message's codec.\n\
             pub fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {{ match self {{"
        );
        for a in &apis {
            let _ = write!(out, "{kind}::{}(m) => m,", a.variant);
        }
        let _ = writeln!(
            out,
            "}} }}\n\n/// Decodes the body of a {what} of this API key and version.\n\
             pub fn decode(api_key: ApiKey, d: &mut Decoder<'_>, version: i16) -> Result<Self, DecodeError> {{ Ok(match api_key {{"
        );
        for a in &apis {
            let _ = write!(
                out,
                "ApiKey::{} => {kind}::{}({}::decode(d, version)?),",
                a.variant,
                a.variant,
                name_of(a)
            );
        }
        let _ = writeln!(
            out,
            "}}) }}\n\n/// The encoded size of the body in `version`.\n\
             pub fn encoded_len(&self, version: i16) -> Result<usize, EncodeError> {{ match self {{"
        );
        for a in &apis {
            let _ = write!(out, "{kind}::{}(m) => m.encoded_len(version),", a.variant);
        }
        let _ = writeln!(
            out,
            "}} }}\n\n/// Writes the body in `version`.\n\
             pub fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {{ match self {{"
        );
        for a in &apis {
            let _ = write!(out, "{kind}::{}(m) => m.encode(buf, version),", a.variant);
        }
        let _ = writeln!(
            out,
            "}} }}\n\n/// Resets what `version` lacks (see each message's `retain_version`).\n\
             pub fn retain_version(&mut self, version: i16) {{ match self {{"
        );
        for a in &apis {
            let _ = write!(
                out,
                "{kind}::{}(m) => m.retain_version(version),",
                a.variant
            );
        }
        let _ = writeln!(
            out,
            "}} }}\n\n/// A {what} of this API key with random fields for `version` (tests only).\n\
             #[cfg(test)]\npub(crate) fn fill(api_key: ApiKey, r: &mut crate::testing::Rng, version: i16) -> Self {{ use crate::testing::Fill; match api_key {{"
        );
        for a in &apis {
            let _ = write!(
                out,
                "ApiKey::{} => {kind}::{}({}::fill(r, version)),",
                a.variant,
                a.variant,
                name_of(a)
            );
        }
        out.push_str("} }\n}\n");
        for a in &apis {
            let _ = writeln!(
                out,
                "impl From<{n}> for {kind} {{ fn from(m: {n}) -> Self {{ {kind}::{v}(m) }} }}\n\
                 impl TryFrom<{kind}> for {n} {{ type Error = {kind}; \
                 fn try_from(m: {kind}) -> Result<Self, {kind}> {{ match m {{ {kind}::{v}(m) => Ok(m), other => Err(other) }} }} }}",
                n = name_of(a),
                v = a.variant
            );
        }
    }
    Ok(out)
}

fn pascal(upper_snake: &str) -> String {
    upper_snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

pub fn error_codes(tsv: &str) -> Result<String, String> {
    let mut rows = Vec::new();
    for (i, line) in tsv.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [code, name, retriable] = cols[..] else {
            return Err(format!("error codes line {}: expected 3 columns", i + 1));
        };
        let code: i16 = code
            .trim()
            .parse()
            .map_err(|e| format!("error codes line {}: {e}", i + 1))?;
        let retriable = match retriable.trim() {
            "yes" => true,
            "no" => false,
            o => return Err(format!("error codes line {}: retriable {o:?}", i + 1)),
        };
        rows.push((code, name.trim().to_string(), retriable));
    }
    let mut out = String::from(HEADER);
    out.push_str(
        "\n//! Every protocol error code, with Kafka's name and whether the Java client \
         retries it.\n\n",
    );
    out.push_str(
        "/// A protocol error code. Codes this table does not know are kept as \
         [`ErrorCode::Unknown`], so nothing a broker says is lost.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n#[non_exhaustive]\npub enum ErrorCode {\n",
    );
    for (code, name, retriable) in &rows {
        let _ = writeln!(
            out,
            "/// `{name}` ({code}){}.\n{},",
            if *retriable { ", retriable" } else { "" },
            pascal(name)
        );
    }
    out.push_str("/// A code this table does not know.\nUnknown(i16),\n}\n\nimpl ErrorCode {\n");
    out.push_str("/// The code for a wire value.\npub const fn from_code(code: i16) -> ErrorCode { match code {");
    for (code, name, _) in &rows {
        let _ = write!(out, "{code} => ErrorCode::{},", pascal(name));
    }
    out.push_str("other => ErrorCode::Unknown(other) } }\n\n/// The wire value.\npub const fn code(self) -> i16 { match self {");
    for (code, name, _) in &rows {
        let _ = write!(out, "ErrorCode::{} => {code},", pascal(name));
    }
    out.push_str("ErrorCode::Unknown(c) => c } }\n\n/// Kafka's name, e.g. `NOT_LEADER_OR_FOLLOWER`.\npub const fn name(self) -> &'static str { match self {");
    for (_, name, _) in &rows {
        let _ = write!(out, "ErrorCode::{} => \"{name}\",", pascal(name));
    }
    out.push_str("ErrorCode::Unknown(_) => \"UNKNOWN\" } }\n\n/// True when the Java client retries a request that failed with this code.\npub const fn is_retriable(self) -> bool { matches!(self, ");
    let retriable: Vec<String> = rows
        .iter()
        .filter(|r| r.2)
        .map(|r| format!("ErrorCode::{}", pascal(&r.1)))
        .collect();
    out.push_str(&retriable.join(" | "));
    out.push_str(
        ") }\n\n/// True for `NONE` (0).\npub const fn is_ok(self) -> bool { matches!(self, ErrorCode::None) }\n\n\
         /// `Ok(())` for `NONE`, else `Err(self)`.\npub const fn into_result(self) -> Result<(), ErrorCode> { if self.is_ok() { Ok(()) } else { Err(self) } }\n}\n\n\
         impl From<i16> for ErrorCode { fn from(code: i16) -> Self { ErrorCode::from_code(code) } }\n\n\
         impl From<ErrorCode> for i16 { fn from(code: ErrorCode) -> Self { code.code() } }\n\n\
         impl std::fmt::Display for ErrorCode {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, \"{} ({})\", self.name(), self.code()) } }\n\n\
         impl std::error::Error for ErrorCode {}\n",
    );
    Ok(out)
}
