#pragma once
// Python str operations over UTF-8 (case mapping covers ASCII, Latin-1, Greek and Cyrillic).
#include <string>
#include <vector>

namespace edgellm::chat::jinja::pystr {

bool is_space(uint32_t cp);
std::string upper(const std::string& s);
std::string lower(const std::string& s);
std::string title(const std::string& s);       // str.title()
std::string capitalize(const std::string& s);  // str.capitalize()
// str.strip/lstrip/rstrip; chars == nullptr strips whitespace.
std::string strip(const std::string& s, const std::string* chars, bool left, bool right);
// str.split / str.rsplit; sep == nullptr splits on runs of whitespace.
std::vector<std::string> split(const std::string& s, const std::string* sep, long maxsplit, bool from_right);
std::string replace(const std::string& s, const std::string& old, const std::string& repl, long count);
size_t length(const std::string& s);  // code points
bool is_lower(const std::string& s);  // str.islower()
bool is_upper(const std::string& s);

}  // namespace edgellm::chat::jinja::pystr
