//! Understanding a project's labeling configuration (Label Studio's XML `label_config`).
//!
//! Pure functions only: parse the XML, find the object tags and their `$variables`, and build the
//! `parsed_label_config` summary that Label Studio returns with a project.

use serde_json::{Map, Value, json};

/// What the server needs to know about a labeling configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelConfig {
    /// Object tags in document order (tags that show data, such as `<Image value="$image"/>`).
    pub objects: Vec<ObjectTag>,
    /// Control tags in document order (tags that produce results, such as `<Choices toName=...>`).
    pub controls: Vec<ControlTag>,
}

/// A tag that displays task data, named by its `$variable`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectTag {
    pub tag: String,
    pub name: String,
    /// The data key without the leading `$`.
    pub variable: String,
}

/// A tag that produces annotation results for one or more object tags.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlTag {
    pub tag: String,
    pub name: String,
    pub to_names: Vec<String>,
    pub labels: Vec<String>,
}

/// Why a labeling configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelConfigError {
    #[error("label config is not valid xml: {0}")]
    InvalidXml(String),
    #[error("label config root tag must be <View>, found <{0}>")]
    WrongRoot(String),
    #[error("control tag <{tag} name=\"{name}\"> points to \"{to_name}\", which is not an object tag name")]
    UnknownToName { tag: String, name: String, to_name: String },
    #[error("tag names must be unique, \"{0}\" is used twice")]
    DuplicateName(String),
}

impl LabelConfig {
    /// Parses and checks a configuration.
    pub fn parse(xml: &str) -> Result<LabelConfig, LabelConfigError> {
        let document = roxmltree::Document::parse(xml).map_err(|e| LabelConfigError::InvalidXml(e.to_string()))?;
        let root = document.root_element();
        if !root.tag_name().name().eq_ignore_ascii_case("view") {
            return Err(LabelConfigError::WrongRoot(root.tag_name().name().to_string()));
        }
        let mut config = LabelConfig::default();
        let mut names = std::collections::HashSet::new();
        for node in root.descendants().filter(|n| n.is_element()) {
            let tag = node.tag_name().name().to_string();
            let Some(name) = node.attribute("name") else {
                continue;
            };
            if let Some(to_name) = node.attribute("toName") {
                if !names.insert(name.to_string()) {
                    return Err(LabelConfigError::DuplicateName(name.to_string()));
                }
                let labels = node
                    .children()
                    .filter(|c| c.is_element())
                    .filter_map(|c| c.attribute("value").or_else(|| c.attribute("alias")))
                    .map(str::to_string)
                    .collect();
                config.controls.push(ControlTag {
                    tag,
                    name: name.to_string(),
                    to_names: to_name.split(',').map(|s| s.trim().to_string()).collect(),
                    labels,
                });
            } else if let Some(variable) = node.attribute("value").and_then(|v| v.strip_prefix('$')) {
                if !names.insert(name.to_string()) {
                    return Err(LabelConfigError::DuplicateName(name.to_string()));
                }
                config.objects.push(ObjectTag {
                    tag,
                    name: name.to_string(),
                    variable: variable.to_string(),
                });
            }
        }
        for control in &config.controls {
            for to_name in &control.to_names {
                if !config.objects.iter().any(|o| &o.name == to_name) {
                    return Err(LabelConfigError::UnknownToName {
                        tag: control.tag.clone(),
                        name: control.name.clone(),
                        to_name: to_name.clone(),
                    });
                }
            }
        }
        Ok(config)
    }

    /// The data key that blob-URL tasks and one-column imports are shown under: the first object
    /// tag's variable, if the configuration has any.
    pub fn first_data_key(&self) -> Option<&str> {
        self.objects.first().map(|o| o.variable.as_str())
    }

    /// Label Studio's `parsed_label_config`: control name -> type, targets, inputs and labels.
    pub fn parsed_summary(&self) -> Value {
        let mut summary = Map::new();
        for control in &self.controls {
            let inputs: Vec<Value> = control
                .to_names
                .iter()
                .filter_map(|to| self.objects.iter().find(|o| &o.name == to))
                .map(|o| json!({"type": o.tag, "value": o.variable}))
                .collect();
            summary.insert(
                control.name.clone(),
                json!({
                    "type": control.tag,
                    "to_name": control.to_names,
                    "inputs": inputs,
                    "labels": control.labels,
                }),
            );
        }
        Value::Object(summary)
    }
}

/// Label Studio's name for the data key of tasks that carry one value of unknown meaning.
pub const UNDEFINED_DATA_KEY: &str = "$undefined$";

/// Renames `$undefined$` in task data to the configuration's first data key (Label Studio does
/// this whenever a task is shown or exported; the stored data keeps `$undefined$`).
pub fn rename_undefined_key(data: &mut Value, first_data_key: Option<&str>) {
    let (Some(key), Value::Object(map)) = (first_data_key, data) else {
        return;
    };
    if map.contains_key(key) {
        return;
    }
    if let Some(value) = map.remove(UNDEFINED_DATA_KEY) {
        map.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE_CLASSIFICATION: &str = r#"<View>
      <Image name="image" value="$image"/>
      <Choices name="choice" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
    </View>"#;

    #[test]
    fn finds_objects_controls_and_first_key() {
        let config = LabelConfig::parse(IMAGE_CLASSIFICATION).unwrap();
        assert_eq!(config.first_data_key(), Some("image"));
        assert_eq!(config.controls[0].labels, vec!["cat", "dog"]);
        let summary = config.parsed_summary();
        assert_eq!(summary["choice"]["type"], "Choices");
        assert_eq!(summary["choice"]["inputs"][0]["value"], "image");
    }

    #[test]
    fn refuses_broken_xml_and_wrong_root_and_dangling_to_name() {
        assert!(matches!(
            LabelConfig::parse("<View><Image"),
            Err(LabelConfigError::InvalidXml(_))
        ));
        assert!(matches!(
            LabelConfig::parse("<Foo/>"),
            Err(LabelConfigError::WrongRoot(_))
        ));
        let dangling = r#"<View><Text name="t" value="$text"/><Labels name="l" toName="x"/></View>"#;
        assert!(matches!(
            LabelConfig::parse(dangling),
            Err(LabelConfigError::UnknownToName { .. })
        ));
    }

    #[test]
    fn renames_undefined_key_only_when_target_is_free() {
        let mut data = json!({"$undefined$": "s3://b/k.jpg"});
        rename_undefined_key(&mut data, Some("image"));
        assert_eq!(data, json!({"image": "s3://b/k.jpg"}));
        let mut taken = json!({"$undefined$": "a", "image": "b"});
        rename_undefined_key(&mut taken, Some("image"));
        assert_eq!(taken["image"], "b");
    }
}
