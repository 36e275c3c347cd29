//! `{{t "message-id" name=value}}` in handlebars templates, in the language of `@root.locale`.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde_json::Value;

use crate::{Arg, Locale};

/// The handlebars helper that writes a catalogue message. It escapes the message with its
/// registry's escape function, so an HTML registry escapes what a patient typed in.
/// The root of the data must carry `locale`, a tag; the hash arguments become the message's.
#[derive(Debug, Clone, Copy, Default)]
pub struct TranslateHelper;

impl HelperDef for TranslateHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        context: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let id = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("t", 0))?;
        let tag = context
            .data()
            .get("locale")
            .and_then(Value::as_str)
            .unwrap_or(crate::FALLBACK);
        let args: Vec<(&str, Arg)> = h
            .hash()
            .iter()
            .map(|(name, value)| {
                let arg = match value.value() {
                    Value::Number(n) => Arg::Number(n.as_f64().unwrap_or_default()),
                    Value::String(s) => Arg::Text(s.clone()),
                    Value::Bool(b) => Arg::Text(if *b { "yes" } else { "no" }.to_owned()),
                    Value::Null => Arg::Text(String::new()),
                    other => Arg::Text(other.to_string()),
                };
                (*name, arg)
            })
            .collect();
        let text = Locale::of_tag(tag)
            .message(id, &args)
            .map_err(|e| RenderErrorReason::Other(e.to_string()))?;
        out.write(&registry.get_escape_fn()(&text))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn registry(escape: bool) -> Handlebars<'static> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        if !escape {
            hb.register_escape_fn(handlebars::no_escape);
        }
        hb.register_helper("t", Box::new(TranslateHelper));
        hb
    }

    #[test]
    fn the_message_is_escaped_in_html_and_kept_in_text() {
        let data = json!({"locale": "fr", "name": "<b>Zoé</b>"});
        let template = r#"{{t "greeting" name=name}}"#;
        assert_eq!(
            registry(true).render_template(template, &data).unwrap(),
            "Bonjour &lt;b&gt;Zoé&lt;/b&gt;,"
        );
        assert_eq!(
            registry(false).render_template(template, &data).unwrap(),
            "Bonjour <b>Zoé</b>,"
        );
    }

    #[test]
    fn an_unknown_message_fails_the_render() {
        let data = json!({"locale": "de"});
        assert!(
            registry(true)
                .render_template(r#"{{t "no-such-message"}}"#, &data)
                .is_err()
        );
    }
}
