//! A certificate's name and fields checked against its template, with
//! the same rules as signed URLs: the text rules of `modifications`, then
//! the template's own apply (missing glyphs, fitting) on the blocking
//! pool. What passes here renders.
//!
//! # The declaration in the template
//!
//! The template format says which layer takes what with attributes usvg
//! ignores (so declaring them changes no pixel):
//!
//! - the recipient's name goes into the `<text>` with
//!   `data-role="recipient-name"`, else the text layer `text_candidate`;
//! - fields are the text layers with `data-field="<name>"`, required
//!   with `data-required="true"`;
//! - a template that declares no field takes any text layer's id as a
//!   field name, none of them required.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::modifications::{check_text, Modification};
use crate::registry::error::RegistryError;
use crate::registry::Registry;
use crate::request::{BaseId, UserId};
use crate::template::{Template, TemplateError};

/// The name layer used when a template declares none.
const DEFAULT_NAME_LAYER: &str = "text_candidate";

/// One field a template takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDeclaration {
    pub name: String,
    /// The text layers the value is written into.
    pub layers: Vec<String>,
    pub required: bool,
}

/// What a template declares a certificate must supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub name_layer: String,
    /// By name. Empty and `open` when the template declares none.
    pub fields: Vec<FieldDeclaration>,
    /// Whether any text layer's id is accepted as a field.
    pub open: bool,
}

impl Declaration {
    /// Reads the declaration of `template`.
    pub fn of(template: &Template) -> Result<Declaration, RegistryError> {
        let mut layers: Vec<(&str, Option<&str>)> = template.text_layers("data-role").collect();
        // Layers come from a map; sorted, a template with two name
        // layers always picks the same one.
        layers.sort_unstable();
        let name_layer = layers
            .iter()
            .find(|(_, role)| *role == Some("recipient-name"))
            .or_else(|| layers.iter().find(|(id, _)| *id == DEFAULT_NAME_LAYER))
            .map(|(id, _)| (*id).to_owned())
            .ok_or_else(|| {
                RegistryError::InvalidTemplate(
                    "The template declares no layer for the recipient's name \
                     (data-role=\"recipient-name\")"
                        .into(),
                )
            })?;
        let required: Vec<(&str, Option<&str>)> = template.text_layers("data-required").collect();
        let mut fields: Vec<FieldDeclaration> = Vec::new();
        for (id, name) in template.text_layers("data-field") {
            let Some(name) = name else { continue };
            let is_required = required
                .iter()
                .any(|(layer, value)| *layer == id && *value == Some("true"));
            match fields.iter_mut().find(|f| f.name == name) {
                Some(field) => {
                    field.layers.push(id.to_owned());
                    field.required |= is_required;
                }
                None => fields.push(FieldDeclaration {
                    name: name.to_owned(),
                    layers: vec![id.to_owned()],
                    required: is_required,
                }),
            }
        }
        for field in &mut fields {
            field.layers.sort_unstable();
        }
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        let open = fields.is_empty();
        if open {
            fields = layers
                .iter()
                .filter(|(id, _)| *id != name_layer)
                .map(|(id, _)| FieldDeclaration {
                    name: (*id).to_owned(),
                    layers: vec![(*id).to_owned()],
                    required: false,
                })
                .collect();
        }
        Ok(Declaration {
            name_layer,
            fields,
            open,
        })
    }
}

impl Registry {
    /// Checks `name` and `fields` against template `template_id` of
    /// `account` as it is now; answers the template's version (hex), which
    /// the certificate records.
    pub(super) async fn check_against_template(
        &self,
        account: &str,
        template_id: &str,
        name: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<String, RegistryError> {
        let access = self.templates()?;
        let unknown = || {
            RegistryError::InvalidTemplate(format!(
                "Template {} does not exist or is not active",
                crate::http::escape(template_id)
            ))
        };
        let user = UserId::parse(account).map_err(|_| unknown())?;
        let base = BaseId::parse(template_id).map_err(|_| unknown())?;
        let template = access
            .templates
            .get(&user, &base)
            .await
            .map_err(|error| match error {
                TemplateError::NotFound => unknown(),
                TemplateError::Rejected(why) => RegistryError::InvalidTemplate(format!(
                    "Template {template_id} is unusable: {why}"
                )),
            })?;
        let declaration = Declaration::of(&template)?;
        let mods = modifications(&declaration, name, fields, access.limits)?;
        let renderer = Arc::clone(&access.renderer);
        let hash = hex::encode(template.hash);
        tokio::task::spawn_blocking(move || try_apply(&template, &renderer, &mods))
            .await
            .map_err(|_| RegistryError::Database("the template check did not finish".into()))??;
        Ok(hash)
    }
}

/// The text rules, unknown and missing fields; then the edits the name
/// and fields make, each with the `param` it came from.
fn modifications(
    declaration: &Declaration,
    name: &str,
    fields: &BTreeMap<String, String>,
    limits: crate::modifications::Limits,
) -> Result<Vec<(String, Modification)>, RegistryError> {
    let text_rules = |param: &str, layer: &str, text: &str| {
        check_text(layer, text, limits)
            .map_err(|e| RegistryError::invalid_field(param, format!("{param}: {e}")))
    };
    if name.trim().is_empty() {
        return Err(RegistryError::invalid_field(
            "recipient.name",
            "recipient.name must not be empty",
        ));
    }
    text_rules("recipient.name", &declaration.name_layer, name)?;
    let mut mods = vec![(
        "recipient.name".to_owned(),
        Modification::text(&declaration.name_layer, name),
    )];
    for (key, value) in fields {
        let param = format!("fields.{key}");
        let field = declaration
            .fields
            .iter()
            .find(|f| f.name == *key)
            .ok_or_else(|| {
                RegistryError::invalid_field(&param, format!("The template has no field `{key}`"))
            })?;
        for layer in &field.layers {
            text_rules(&param, layer, value)?;
            mods.push((param.clone(), Modification::text(layer, value)));
        }
    }
    if let Some(missing) = declaration
        .fields
        .iter()
        .find(|f| f.required && !fields.contains_key(&f.name))
    {
        let param = format!("fields.{}", missing.name);
        return Err(RegistryError::invalid_field(
            &param,
            format!("The template requires the field `{}`", missing.name),
        ));
    }
    Ok(mods)
}

/// Applies every edit as a render would (glyph coverage, fitting). On a
/// failure the edits are tried one by one to name the one at fault; that
/// costs more, but only for a request that is refused anyway.
fn try_apply(
    template: &Template,
    renderer: &crate::render::Renderer,
    mods: &[(String, Modification)],
) -> Result<(), RegistryError> {
    let apply = |edits: &[Modification]| template.apply(&template.plan(edits), renderer).map(drop);
    let all: Vec<Modification> = mods.iter().map(|(_, m)| m.clone()).collect();
    let Err(error) = apply(&all) else {
        return Ok(());
    };
    let culprit = mods
        .iter()
        .find(|(_, m)| apply(std::slice::from_ref(m)).is_err())
        .map_or("recipient.name", |(param, _)| param.as_str());
    Err(RegistryError::invalid_field(
        culprit,
        format!("{culprit}: {error}"),
    ))
}
