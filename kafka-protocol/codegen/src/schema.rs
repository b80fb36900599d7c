//! Reading Kafka's JSON message definitions, strictly: a key this generator does not
//! know fails generation, so a schema change can never be silently ignored.

use serde::Deserialize;
use std::fmt;

/// A set of versions as the schemas write them: `none`, `3`, `3+` or `0-7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    /// `i16::MAX` for an open range.
    pub max: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { min: 0, max: -1 };

    pub fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|e| format!("bad version {t:?}: {e}"))
        };
        if s == "none" {
            Ok(Versions::NONE)
        } else if let Some(min) = s.strip_suffix('+') {
            Ok(Versions {
                min: num(min)?,
                max: i16::MAX,
            })
        } else if let Some((a, b)) = s.split_once('-') {
            Ok(Versions {
                min: num(a)?,
                max: num(b)?,
            })
        } else {
            let v = num(s)?;
            Ok(Versions { min: v, max: v })
        }
    }

    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    pub fn intersect(&self, o: &Versions) -> Versions {
        Versions {
            min: self.min.max(o.min),
            max: self.max.min(o.max),
        }
    }

    pub fn contains_all(&self, o: &Versions) -> bool {
        o.is_empty() || (self.min <= o.min && self.max >= o.max)
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else if self.max == i16::MAX {
            write!(f, "{}+", self.min)
        } else if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

fn versions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Versions, D::Error> {
    let s = String::deserialize(d)?;
    Versions::parse(&s).map_err(serde::de::Error::custom)
}

fn opt_versions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Versions>, D::Error> {
    let s = String::deserialize(d)?;
    Versions::parse(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn opt_tag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match DefaultValue::deserialize(d)? {
        DefaultValue::Int(i) => u32::try_from(i).map(Some).map_err(serde::de::Error::custom),
        DefaultValue::Str(s) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
        DefaultValue::Bool(_) => Err(serde::de::Error::custom("a tag is a number")),
    }
}

/// A default value: the schemas write numbers, booleans and strings, sometimes quoted.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DefaultValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl DefaultValue {
    pub fn text(&self) -> String {
        match self {
            DefaultValue::Str(s) => s.clone(),
            DefaultValue::Int(i) => i.to_string(),
            DefaultValue::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub api_key: Option<i16>,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(deserialize_with = "versions")]
    pub valid_versions: Versions,
    #[serde(deserialize_with = "versions")]
    pub flexible_versions: Versions,
    #[serde(default, deserialize_with = "opt_versions")]
    pub deprecated_versions: Option<Versions>,
    #[serde(default)]
    pub latest_version_unstable: bool,
    #[serde(default)]
    pub listeners: Vec<String>,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub common_structs: Vec<CommonStruct>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommonStruct {
    pub name: String,
    /// Read and checked; fields carry their own versions.
    #[serde(deserialize_with = "versions")]
    #[allow(dead_code)]
    pub versions: Versions,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(deserialize_with = "versions")]
    pub versions: Versions,
    #[serde(default, deserialize_with = "opt_versions")]
    pub nullable_versions: Option<Versions>,
    #[serde(default, deserialize_with = "opt_versions")]
    pub tagged_versions: Option<Versions>,
    #[serde(default, deserialize_with = "opt_versions")]
    pub flexible_versions: Option<Versions>,
    #[serde(default, deserialize_with = "opt_tag")]
    pub tag: Option<u32>,
    #[serde(default)]
    pub default: Option<DefaultValue>,
    /// Read and checked, not used: every message here is decoded zero-copy.
    #[serde(default)]
    #[allow(dead_code)]
    pub zero_copy: bool,
    /// Read and checked, not used: a set non-default field that does not exist in the
    /// chosen version is always an error here, ignorable or not.
    #[serde(default)]
    #[allow(dead_code)]
    pub ignorable: bool,
    /// Read and checked, not used: arrays keep their wire order as a `Vec`.
    #[serde(default)]
    #[allow(dead_code)]
    pub map_key: bool,
    /// Read and checked, not used.
    #[serde(default)]
    #[allow(dead_code)]
    pub entity_type: Option<String>,
    /// Read and checked, deliberately never copied into the project.
    #[serde(default)]
    #[allow(dead_code)]
    pub about: Option<String>,
    #[serde(default)]
    pub fields: Option<Vec<Field>>,
}

/// Removes `//` comments (outside strings) so the JSON parses.
pub fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn parse(src: &str) -> Result<Spec, String> {
    // Through a `Value` first: one upstream schema repeats a key (with the same value),
    // which Kafka's own JSON reader accepts and a struct deserializer would not.
    let value: serde_json::Value =
        serde_json::from_str(&strip_comments(src)).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_fail() {
        let src = r#"{ "type": "data", "name": "X", "validVersions": "0", "flexibleVersions": "none",
            "fields": [ { "name": "A", "type": "int8", "versions": "0+", "surprise": 1 } ] }"#;
        assert!(parse(src).unwrap_err().contains("surprise"));
    }

    #[test]
    fn comments_are_stripped_but_not_inside_strings() {
        let src = "// header\n{ \"a\": \"http://x\" } // tail";
        assert_eq!(strip_comments(src), "\n{ \"a\": \"http://x\" } ");
    }

    #[test]
    fn versions_parse() {
        assert_eq!(Versions::parse("3+").unwrap().to_string(), "3+");
        assert_eq!(Versions::parse("0-7").unwrap().to_string(), "0-7");
        assert!(Versions::parse("none").unwrap().is_empty());
        assert!(Versions::parse("x").is_err());
    }
}
