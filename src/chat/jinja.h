#pragma once
// A Jinja2 template engine for chat templates: the subset of jinja2 that model chat templates
// use, with Python value semantics, rendered the way HF transformers renders them.
//
//   jinja::Template t(source);                      // throws TemplateError on syntax errors
//   std::string s = t.render(vars);                 // vars: dict Value (see from_json)
#include <memory>
#include <string>

#include "chat/jinja_interp.h"
#include "chat/jinja_value.h"

namespace edgellm::chat::jinja {

class Template {
 public:
  explicit Template(const std::string& source, const Options& opt = {});
  // Throws TemplateError (syntax, runtime, raise_exception, limits); never crashes.
  std::string render(const Value& vars) const;
  std::string render(const chat::Value& vars) const { return render(from_json(vars)); }

 private:
  std::shared_ptr<const Program> program_;
  Options opt_;
};

// Known filter (filter=true) or test names; unknown ones are compile errors, as in jinja2.
bool has_filter_or_test(const std::string& name, bool filter);

}  // namespace edgellm::chat::jinja
