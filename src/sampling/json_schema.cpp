// JSON Schema compiler: walks the schema and emits grammar rules via JsonParts.
#include "sampling/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sampling/json_parts.h"
#include "sampling/regex_grammar.h"
#include "util/error.h"

namespace edgellm::sampling {
namespace {

using ojson = nlohmann::ordered_json;
using R = GrammarBuilder;

const std::set<std::string> kAnnotations = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
    "writeOnly", "format", "contentMediaType", "contentEncoding", "$defs", "definitions", "$anchor"};
const std::set<std::string> kUnsupported = {
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "allOf", "not", "if", "then",
    "else", "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
    "dependentSchemas", "dependencies", "uniqueItems", "contains", "minContains", "maxContains", "prefixItems",
    "unevaluatedProperties", "unevaluatedItems", "additionalItems", "$dynamicRef", "$recursiveRef"};

// Budgets: a schema deeper or larger than these is refused (InvalidArgument, a 400) before
// its grammar grows; the grammar builder and the matcher have their own budgets on top.
constexpr int kMaxDepth = 64;            // nested subschemas (OpenAI allows 10)
constexpr size_t kMaxSubschemas = 20'000;
constexpr size_t kMaxEnumValues = 10'000;  // enum values become a byte trie: matching stays cheap
constexpr size_t kMaxAlternatives = 256;   // anyOf / oneOf / type lists
constexpr size_t kMaxProperties = 2'000;   // per object

const std::set<std::string> kIntegerBounds = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};

class SchemaCompiler {
 public:
  SchemaCompiler(const ojson& root, const JsonSchemaOptions& opt) : root_(root), opt_(opt), parts_(b_) {}

  std::shared_ptr<const Grammar> run() { return b_.build(compile(root_, "#", 0)); }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& msg) const {
    throw InvalidArgument("json schema at " + path + ": " + msg);
  }

  int get_count(const ojson& s, const char* key, const std::string& path, int dflt) const {
    if (!s.contains(key)) return dflt;
    const auto& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1'000'000)
      fail(path, std::string("'") + key + "' must be a non-negative integer (at most 1000000)");
    return static_cast<int>(v.get<int64_t>());
  }

  // Validation keywords next to `main` that we would silently drop.
  void only_with(const ojson& s, const std::string& path, const std::string& main, const std::set<std::string>& also) {
    if (!opt_.strict) return;
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      if (k == main || also.count(k) || kAnnotations.count(k) || !is_validation_keyword(k)) continue;
      fail(path, "keyword '" + k + "' combined with '" + main + "' is not supported");
    }
  }

  static bool is_validation_keyword(const std::string& k) {
    static const std::set<std::string> known = {
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "minItems",
        "maxItems", "anyOf", "oneOf", "$ref", "minLength", "maxLength", "pattern"};
    return known.count(k) || kUnsupported.count(k);
  }

  std::string dump(const ojson& v, const std::string& path) const {
    try {
      return v.dump();
    } catch (const std::exception& e) {
      fail(path, std::string("value cannot be serialised: ") + e.what());
    }
  }

  int32_t literal(const ojson& v, const std::string& path) { return b_.rule("literal", {b_.literal(dump(v, path))}); }

  int32_t compile(const ojson& s, const std::string& path, int depth) {
    if (depth > kMaxDepth) fail(path, "the schema nests more than " + std::to_string(kMaxDepth) + " levels");
    if (++n_subschemas_ > kMaxSubschemas)
      fail(path, "the schema has more than " + std::to_string(kMaxSubschemas) + " subschemas");
    if (s.is_boolean()) return s.get<bool>() ? parts_.any_value() : b_.rule("false", {});
    if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
    for (auto it = s.begin(); it != s.end(); ++it)
      if (opt_.strict && kUnsupported.count(it.key()) &&
          !(it.key() == "allOf" && it.value().is_array() && it.value().size() == 1) &&
          !(kIntegerBounds.count(it.key()) && numeric_typed(s)))
        fail(path, "keyword '" + it.key() + "' is not supported for constrained decoding");

    if (s.contains("allOf")) {  // single-element allOf (pydantic's $ref wrapper) is the element
      const auto& all = s["allOf"];
      if (all.is_array() && all.size() == 1) {
        only_with(s, path, "allOf", {});
        return compile(all[0], path + "/allOf/0", depth + 1);
      }
    }
    if (s.contains("$ref")) {
      only_with(s, path, "$ref", {});
      if (!s["$ref"].is_string()) fail(path, "'$ref' must be a string");
      return compile_ref(s["$ref"].get<std::string>(), path, depth);
    }
    if (s.contains("const")) {
      only_with(s, path, "const", {"type"});
      return literal(s["const"], path + "/const");
    }
    if (s.contains("enum")) {
      only_with(s, path, "enum", {"type"});
      const auto& e = s["enum"];
      if (!e.is_array() || e.empty()) fail(path, "'enum' must be a non-empty array");
      if (e.size() > kMaxEnumValues)
        fail(path, "'enum' has " + std::to_string(e.size()) + " values, more than " + std::to_string(kMaxEnumValues));
      std::vector<std::string> texts;
      for (size_t i = 0; i < e.size(); ++i)
        if (!s.contains("type") || matches_type(e[i], s["type"])) texts.push_back(dump(e[i], path + "/enum/" + std::to_string(i)));
      if (texts.empty()) fail(path, "no 'enum' value matches 'type'");
      return parts_.one_of_literals(texts);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      only_with(s, path, key, {});
      const auto& list = s[key];
      if (!list.is_array() || list.empty()) fail(path, std::string("'") + key + "' must be a non-empty array");
      if (list.size() > kMaxAlternatives)
        fail(path, std::string("'") + key + "' has more than " + std::to_string(kMaxAlternatives) + " schemas");
      std::vector<R::Seq> alts;
      for (size_t i = 0; i < list.size(); ++i)
        alts.push_back({R::ref(compile(list[i], path + "/" + key + "/" + std::to_string(i), depth + 1))});
      return b_.rule(key, std::move(alts));
    }

    std::vector<std::string> types;
    if (s.contains("type")) {
      const auto& t = s["type"];
      if (t.is_string()) types.push_back(t.get<std::string>());
      else if (t.is_array())
        for (const auto& x : t) {
          if (!x.is_string()) fail(path, "'type' entries must be strings");
          types.push_back(x.get<std::string>());
        }
      else fail(path, "'type' must be a string or an array of strings");
    } else if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) {
      types = {"object"};
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      types = {"array"};
    } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("pattern")) {
      types = {"string"};
    } else {
      return parts_.any_value();
    }
    if (types.size() > kMaxAlternatives) fail(path, "'type' lists too many types");
    std::vector<R::Seq> alts;
    for (const auto& t : types) alts.push_back({R::ref(compile_type(t, s, path, depth))});
    return alts.size() == 1 ? -1 - alts[0][0] : b_.rule("types", std::move(alts));
  }

  static bool matches_type(const ojson& v, const ojson& type) {
    auto one = [&](const std::string& t) {
      return (t == "object" && v.is_object()) || (t == "array" && v.is_array()) || (t == "string" && v.is_string()) ||
             (t == "number" && v.is_number()) || (t == "integer" && v.is_number_integer()) ||
             (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null());
    };
    if (type.is_string()) return one(type.get<std::string>());
    if (type.is_array())
      for (const auto& t : type)
        if (t.is_string() && one(t.get<std::string>())) return true;
    return false;
  }

  int32_t compile_type(const std::string& t, const ojson& s, const std::string& path, int depth) {
    if (t == "object") return compile_object(s, path, depth);
    if (t == "array") return compile_array(s, path, depth);
    if (t == "string") return compile_string(s, path);
    if (t == "number") return compile_number(s, path);
    if (t == "integer") return compile_integer(s, path);
    if (t == "boolean") return parts_.boolean();
    if (t == "null") return parts_.null();
    fail(path, "unknown type '" + t + "'");
  }

  // Bounds are supported when the schema's type names integer or number.
  static bool numeric_typed(const ojson& s) {
    if (!s.contains("type")) return false;
    const auto& t = s["type"];
    if (t.is_string()) return t == "integer" || t == "number";
    if (!t.is_array()) return false;
    for (const auto& x : t)
      if (x == "integer" || x == "number") return true;
    return false;
  }

  struct Bounds {
    double lo = -INFINITY, hi = INFINITY;
    bool lo_excl = false, hi_excl = false;
    bool any = false;
  };
  Bounds numeric_bounds(const ojson& s, const std::string& path) const {
    Bounds b;
    auto get = [&](const char* key, double& v, bool& excl, bool exclusive, bool lower) {
      if (!s.contains(key)) return;
      if (!s[key].is_number()) fail(path, std::string("'") + key + "' must be a number");
      const double x = s[key].get<double>();
      b.any = true;
      if (lower ? (x > v || (x == v && exclusive)) : (x < v || (x == v && exclusive))) {
        v = x;
        excl = exclusive;
      }
    };
    get("minimum", b.lo, b.lo_excl, false, true);
    get("exclusiveMinimum", b.lo, b.lo_excl, true, true);
    get("maximum", b.hi, b.hi_excl, false, false);
    get("exclusiveMaximum", b.hi, b.hi_excl, true, false);
    return b;
  }

  int32_t compile_number(const ojson& s, const std::string& path) {
    const Bounds b = numeric_bounds(s, path);
    if (!b.any) return parts_.number();
    const int32_t r = parts_.number_range(b.lo, b.lo_excl, b.hi, b.hi_excl);
    if (r < 0) fail(path, "the minimum/maximum range is too narrow: constrained decoding produces integers and "
                          "numbers n.ddd whose whole interval [n, n+1) fits the range");
    return r;
  }

  int32_t compile_integer(const ojson& s, const std::string& path) {
    const Bounds b = numeric_bounds(s, path);
    if (!b.any) return parts_.integer();
    const double lim = static_cast<double>(JsonParts::kMaxInt) + 1;
    const double lo = std::clamp(b.lo_excl ? std::floor(b.lo) + 1 : std::ceil(b.lo), -lim, lim);
    const double hi = std::clamp(b.hi_excl ? std::ceil(b.hi) - 1 : std::floor(b.hi), -lim, lim);
    if (lo > hi || lo > JsonParts::kMaxInt || hi < -JsonParts::kMaxInt)
      fail(path, "no integer satisfies the minimum/maximum bounds");
    return parts_.integer_range(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
  }

  int32_t compile_ref(const std::string& ref, const std::string& path, int depth) {
    auto it = refs_.find(ref);
    if (it != refs_.end()) return it->second;
    if (ref.empty() || ref[0] != '#') fail(path, "only local '$ref' (starting with '#') is supported, got '" + ref + "'");
    const ojson* target = nullptr;
    try {
      const ojson::json_pointer ptr(ref.substr(1));
      if (root_.contains(ptr)) target = &root_.at(ptr);
    } catch (const std::exception&) {
    }
    if (!target) fail(path, "'$ref' target '" + ref + "' does not exist in the schema");
    const int32_t r = b_.new_rule("ref " + ref);
    refs_[ref] = r;  // registered before compiling so recursive schemas terminate
    b_.define(r, {{R::ref(compile(*target, ref, depth + 1))}});
    return r;
  }

  int32_t compile_string(const ojson& s, const std::string& path) {
    const int min_len = get_count(s, "minLength", path, 0);
    const int max_len = get_count(s, "maxLength", path, -1);
    if (max_len >= 0 && max_len < min_len) fail(path, "'maxLength' is below 'minLength'");
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) fail(path, "'pattern' must be a string");
      if (opt_.strict && (s.contains("minLength") || s.contains("maxLength")))
        fail(path, "'pattern' combined with 'minLength'/'maxLength' is not supported");
      try {
        return compile_pattern(b_, parts_, s["pattern"].get<std::string>());
      } catch (const InvalidArgument& e) {
        fail(path, e.what());
      }
    }
    return parts_.string(min_len, max_len);
  }

  int32_t compile_array(const ojson& s, const std::string& path, int depth) {
    const int min_items = get_count(s, "minItems", path, 0);
    const int max_items = get_count(s, "maxItems", path, -1);
    if (max_items >= 0 && max_items < min_items) fail(path, "'maxItems' is below 'minItems'");
    int32_t item;
    if (!s.contains("items")) item = parts_.any_value();
    else if (s["items"].is_array()) fail(path, "tuple-form 'items' (an array of schemas) is not supported");
    else item = compile(s["items"], path + "/items", depth + 1);
    return parts_.array_of(item, min_items, max_items, "array " + path);
  }

  int32_t compile_object(const ojson& s, const std::string& path, int depth) {
    struct Prop {
      std::string key_json;  // quoted, escaped name
      int32_t value;
      bool required;
    };
    std::vector<Prop> props;
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(path, "'required' must be an array of strings");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) fail(path, "'required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    std::set<std::string> declared;
    auto key_json = [&](const std::string& name) {
      try {
        return ojson(name).dump();
      } catch (const std::exception&) {
        fail(path, "property name is not valid UTF-8");
      }
    };
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) fail(path, "'properties' must be an object");
      if (s["properties"].size() > kMaxProperties)
        fail(path, "'properties' declares more than " + std::to_string(kMaxProperties) + " properties");
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
        declared.insert(it.key());
        props.push_back({key_json(it.key()), compile(it.value(), path + "/properties/" + it.key(), depth + 1),
                         required.count(it.key()) > 0});
      }
    }
    const bool closed = s.contains("additionalProperties") && s["additionalProperties"].is_boolean() &&
                        !s["additionalProperties"].get<bool>();
    for (const auto& name : required) {  // required but undeclared: any value, unless none is allowed
      if (declared.count(name)) continue;
      if (closed)
        fail(path, "no document can satisfy this schema: property '" + name +
                       "' is required, but 'additionalProperties' is false and 'properties' does not declare it");
      props.push_back({key_json(name), parts_.any_value(), true});
    }
    if (required.size() > kMaxProperties) fail(path, "'required' lists too many properties");

    // Additional members: only when allowed explicitly, or when nothing is declared.
    int32_t extra_value = -1;
    if (s.contains("additionalProperties")) {
      const auto& ap = s["additionalProperties"];
      if (!(ap.is_boolean() && !ap.get<bool>())) extra_value = compile(ap, path + "/additionalProperties", depth + 1);
    } else if (props.empty()) {
      extra_value = parts_.any_value();
    }

    const int32_t w = parts_.ws();
    auto member = [&](R::Seq key, int32_t value) {
      key.insert(key.end(), {R::ref(w), b_.byte(':'), R::ref(w), R::ref(value), R::ref(w)});
      return b_.rule("member", {key});
    };
    // first[i]: members from i on, none emitted yet; next[i]: same after at least one (comma).
    const size_t n = props.size();
    std::vector<int32_t> first(n + 1), next(n + 1);
    if (extra_value >= 0) {
      std::vector<std::string> bodies;
      for (const auto& p : props) bodies.push_back(p.key_json.substr(1, p.key_json.size() - 2));
      const int32_t kv = member({R::ref(parts_.key_not_in(bodies))}, extra_value);
      next[n] = b_.new_rule("extra-next");
      b_.define(next[n], {{b_.byte(','), R::ref(w), R::ref(kv), R::ref(next[n])}, {}});
      first[n] = b_.rule("extra-first", {{R::ref(kv), R::ref(next[n])}, {}});
    } else {
      first[n] = next[n] = b_.rule("members-end", {{}});
    }
    for (size_t i = n; i-- > 0;) {
      const int32_t kv = member(b_.literal(props[i].key_json), props[i].value);
      std::vector<R::Seq> f = {{R::ref(kv), R::ref(next[i + 1])}};
      std::vector<R::Seq> x = {{b_.byte(','), R::ref(w), R::ref(kv), R::ref(next[i + 1])}};
      if (!props[i].required) {
        f.push_back({R::ref(first[i + 1])});
        x.push_back({R::ref(next[i + 1])});
      }
      first[i] = b_.rule("members", std::move(f));
      next[i] = b_.rule("members-next", std::move(x));
    }
    return b_.rule("object " + path, {{b_.byte('{'), R::ref(w), R::ref(first[0]), b_.byte('}')}});
  }

  const ojson& root_;
  JsonSchemaOptions opt_;
  GrammarBuilder b_;
  JsonParts parts_;
  std::map<std::string, int32_t> refs_;
  size_t n_subschemas_ = 0;
};

}  // namespace

std::shared_ptr<const Grammar> compile_json_schema(const nlohmann::ordered_json& schema, const JsonSchemaOptions& options) {
  return SchemaCompiler(schema, options).run();
}

std::shared_ptr<const Grammar> compile_json_schema(const nlohmann::json& schema, const JsonSchemaOptions& options) {
  return compile_json_schema(ojson::parse(schema.dump()), options);
}

std::shared_ptr<const Grammar> compile_json_schema_text(std::string_view schema_text, const JsonSchemaOptions& options) {
  ojson schema;
  try {
    schema = ojson::parse(schema_text);
  } catch (const std::exception& e) {
    throw InvalidArgument(std::string("json schema is not valid JSON: ") + e.what());
  }
  return compile_json_schema(schema, options);
}

std::shared_ptr<const Grammar> json_object_grammar() {
  GrammarBuilder b;
  JsonParts parts(b);
  return b.build(parts.any_object());
}

std::shared_ptr<const Grammar> json_value_grammar() {
  GrammarBuilder b;
  JsonParts parts(b);
  return b.build(parts.any_value());
}

}  // namespace edgellm::sampling
