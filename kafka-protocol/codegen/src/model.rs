//! The generator's model of a message: its structs and their typed fields, checked
//! for consistency while it is built from a [`Spec`].

use crate::schema::{DefaultValue, Field, Spec, Versions};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Bool,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    F64,
    Uuid,
    String,
    Bytes,
    Records,
    Array(Box<Ty>),
    Struct(String),
}

impl Ty {
    pub fn parse(s: &str) -> Result<Ty, String> {
        Ok(match s {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "uint32" => Ty::U32,
            "int64" => Ty::I64,
            "float64" => Ty::F64,
            "uuid" => Ty::Uuid,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            _ => {
                if let Some(inner) = s.strip_prefix("[]") {
                    Ty::Array(Box::new(Ty::parse(inner)?))
                } else if s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    Ty::Struct(s.to_string())
                } else {
                    return Err(format!("unknown type {s:?}"));
                }
            }
        })
    }

    /// Bytes on the wire for fixed-size types.
    pub fn fixed_size(&self) -> Option<usize> {
        Some(match self {
            Ty::Bool | Ty::I8 => 1,
            Ty::I16 | Ty::U16 => 2,
            Ty::I32 | Ty::U32 => 4,
            Ty::I64 | Ty::F64 => 8,
            Ty::Uuid => 16,
            _ => return None,
        })
    }

    /// The Rust type, without the `Option` of nullable fields.
    pub fn rust(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::U16 => "u16".into(),
            Ty::I32 => "i32".into(),
            Ty::U32 => "u32".into(),
            Ty::I64 => "i64".into(),
            Ty::F64 => "f64".into(),
            Ty::Uuid => "Uuid".into(),
            Ty::String => "StrBytes".into(),
            Ty::Bytes | Ty::Records => "Bytes".into(),
            Ty::Array(t) => format!("Vec<{}>", t.rust()),
            Ty::Struct(s) => s.clone(),
        }
    }

    /// The schema's spelling, for docs.
    pub fn schema(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "int8".into(),
            Ty::I16 => "int16".into(),
            Ty::U16 => "uint16".into(),
            Ty::I32 => "int32".into(),
            Ty::U32 => "uint32".into(),
            Ty::I64 => "int64".into(),
            Ty::F64 => "float64".into(),
            Ty::Uuid => "uuid".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Records => "records".into(),
            Ty::Array(t) => format!("[]{}", t.schema()),
            Ty::Struct(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub schema_name: String,
    pub rust_name: String,
    pub ty: Ty,
    pub versions: Versions,
    /// Versions in which the field may be null (within `versions`); empty when never.
    pub nullable: Versions,
    /// The tag and the versions in which the field is tagged.
    pub tagged: Option<(u32, Versions)>,
    /// A field-level override of the message's flexible versions.
    pub flexible_override: Option<Versions>,
    pub default: Option<DefaultValue>,
}

impl FieldDef {
    pub fn is_option(&self) -> bool {
        !self.nullable.is_empty()
    }

    pub fn rust_type(&self) -> String {
        if self.is_option() {
            format!("Option<{}>", self.ty.rust())
        } else {
            self.ty.rust()
        }
    }
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<FieldDef>,
}

#[derive(Debug, Clone)]
pub struct MessageDef {
    pub spec: Spec,
    /// The top-level struct first, then nested and common structs in definition order.
    pub structs: Vec<StructDef>,
}

const RESERVED: &[&str] = &[
    "Bytes",
    "BytesMut",
    "BufMut",
    "StrBytes",
    "Uuid",
    "Decoder",
    "Encode",
    "Decode",
    "Message",
    "Request",
    "Response",
    "ApiKey",
    "VersionRange",
    "UnknownTaggedFields",
    "DecodeError",
    "EncodeError",
    "Option",
    "Vec",
    "String",
];

pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "type" | "match" | "self" | "ref" | "mod" | "use" | "fn" | "impl" | "move" | "static"
        | "struct" | "enum" | "where" | "loop" | "in" | "as" | "crate" | "super" | "async"
        | "await" | "dyn" | "const" | "let" | "mut" | "pub" | "return" | "trait" | "true"
        | "false" | "while" | "for" | "if" | "else" | "break" | "continue" | "extern" | "box"
        | "yield" | "try" | "union" => format!("r#{out}"),
        _ => out,
    }
}

impl MessageDef {
    pub fn build(spec: Spec) -> Result<MessageDef, String> {
        let mut structs: Vec<StructDef> = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let top = StructDef {
            name: spec.name.clone(),
            fields: Vec::new(),
        };
        structs.push(top);
        seen.insert(spec.name.clone(), 0);
        for cs in &spec.common_structs {
            if seen.insert(cs.name.clone(), structs.len()).is_some() {
                return Err(format!("struct {} defined twice", cs.name));
            }
            structs.push(StructDef {
                name: cs.name.clone(),
                fields: Vec::new(),
            });
        }
        let top_fields = collect(&spec.fields, &mut structs, &mut seen)?;
        structs[0].fields = top_fields;
        for cs in &spec.common_structs {
            let fields = collect(&cs.fields, &mut structs, &mut seen)?;
            let idx = seen[&cs.name];
            structs[idx].fields = fields;
        }
        // Every struct a field names must be defined.
        for s in &structs {
            for f in &s.fields {
                let mut t = &f.ty;
                while let Ty::Array(inner) = t {
                    t = inner;
                }
                if let Ty::Struct(name) = t {
                    if !seen.contains_key(name) {
                        return Err(format!(
                            "{}.{}: struct {name} is not defined",
                            s.name, f.schema_name
                        ));
                    }
                }
            }
        }
        for s in &structs {
            if RESERVED.contains(&s.name.as_str()) {
                return Err(format!("struct name {} clashes with a codec type", s.name));
            }
        }
        Ok(MessageDef { spec, structs })
    }
}

fn collect(
    fields: &[Field],
    structs: &mut Vec<StructDef>,
    seen: &mut BTreeMap<String, usize>,
) -> Result<Vec<FieldDef>, String> {
    let mut out = Vec::new();
    for f in fields {
        let ty = Ty::parse(&f.ty).map_err(|e| format!("field {}: {e}", f.name))?;
        if let Some(nested) = &f.fields {
            let name = match &ty {
                Ty::Struct(n) => n.clone(),
                Ty::Array(inner) => match inner.as_ref() {
                    Ty::Struct(n) => n.clone(),
                    _ => return Err(format!("field {} has fields but type {}", f.name, f.ty)),
                },
                _ => return Err(format!("field {} has fields but type {}", f.name, f.ty)),
            };
            if seen.contains_key(&name) {
                return Err(format!("struct {name} defined twice"));
            }
            seen.insert(name.clone(), structs.len());
            structs.push(StructDef {
                name: name.clone(),
                fields: Vec::new(),
            });
            let idx = seen[&name];
            let inner = collect(nested, structs, seen)?;
            structs[idx].fields = inner;
        }
        let nullable = f
            .nullable_versions
            .map(|n| n.intersect(&f.versions))
            .unwrap_or(Versions::NONE);
        let nullable_ok = matches!(
            ty,
            Ty::String | Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Struct(_)
        );
        if !nullable.is_empty() && !nullable_ok {
            return Err(format!(
                "field {}: type {} cannot be nullable",
                f.name, f.ty
            ));
        }
        let tagged = match (f.tag, f.tagged_versions) {
            (Some(tag), Some(v)) => Some((tag, v.intersect(&f.versions))),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "field {}: tag and taggedVersions go together",
                    f.name
                ))
            }
        };
        if let Some((_, tv)) = tagged {
            if tv != f.versions {
                return Err(format!(
                    "field {}: tagged in {tv} but present in {}; partly tagged fields are not supported",
                    f.name, f.versions
                ));
            }
        }
        out.push(FieldDef {
            schema_name: f.name.clone(),
            rust_name: snake(&f.name),
            ty,
            versions: f.versions,
            nullable,
            tagged,
            flexible_override: f.flexible_versions,
            default: f.default.clone(),
        });
    }
    let mut names = std::collections::BTreeSet::new();
    for f in &out {
        if !names.insert(f.rust_name.clone()) || f.rust_name == "unknown_tagged_fields" {
            return Err(format!("field name {} is used twice", f.rust_name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake("ISRVersion"), "isr_version");
        assert_eq!(snake("TopicId"), "topic_id");
        assert_eq!(snake("Type"), "r#type");
        assert_eq!(snake("ZkMigrationReady"), "zk_migration_ready");
        assert_eq!(snake("V1Field"), "v1_field");
    }
}
