// A small strict well-formedness checker for the report's XHTML-style markup: every element is
// closed (or self-closed) in the right order, attributes are name="value", text holds no bare
// '<' and every '&' starts a known entity. It also collects the ids of elements, so tests can
// ask which figures a page holds. Not a general XML parser: no CDATA, no processing instructions
// beyond the <!DOCTYPE html> line and comments.
#pragma once
#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace lowbit::testing {

struct XmlCheck {
  std::string error;         // empty: well formed
  std::set<std::string> ids;  // every id="..." seen
  std::vector<std::string> titles;  // text of every <title> element
  size_t elements = 0;
};

inline XmlCheck check_xml(const std::string& s) {
  XmlCheck r;
  std::vector<std::string> stack;
  auto where = [&](size_t i) {
    size_t line = 1;
    for (size_t k = 0; k < i && k < s.size(); ++k) line += s[k] == '\n';
    return " at line " + std::to_string(line);
  };
  auto check_entities = [&](size_t from, size_t to) {
    for (size_t k = from; k < to; ++k) {
      if (s[k] == '<') return "bare '<'" + where(k);
      if (s[k] != '&') continue;
      const size_t semi = s.find(';', k);
      const std::string name = semi == std::string::npos || semi > to ? "" : s.substr(k + 1, semi - k - 1);
      if (name != "amp" && name != "lt" && name != "gt" && name != "quot" && name != "apos" &&
          !(name.size() > 1 && name[0] == '#'))
        return "bad entity '&" + name + "'" + where(k);
    }
    return std::string();
  };
  size_t i = 0;
  std::string title_text;
  while (i < s.size()) {
    const size_t lt = s.find('<', i);
    const size_t text_end = lt == std::string::npos ? s.size() : lt;
    if (std::string e = check_entities(i, text_end); !e.empty()) return r.error = e, r;
    if (!stack.empty() && stack.back() == "title") title_text += s.substr(i, text_end - i);
    if (lt == std::string::npos) break;
    if (s.compare(lt, 4, "<!--") == 0) {
      const size_t end = s.find("-->", lt);
      if (end == std::string::npos) return r.error = "unclosed comment" + where(lt), r;
      i = end + 3;
      continue;
    }
    if (s.compare(lt, 9, "<!DOCTYPE") == 0) {
      if (lt != 0 || r.elements != 0) return r.error = "DOCTYPE not at the start", r;
      i = s.find('>', lt) + 1;
      continue;
    }
    const size_t gt = s.find('>', lt);
    if (gt == std::string::npos) return r.error = "unterminated tag" + where(lt), r;
    std::string tag = s.substr(lt + 1, gt - lt - 1);
    if (!tag.empty() && tag[0] == '/') {  // closing tag
      const std::string name = tag.substr(1);
      if (stack.empty()) return r.error = "closing </" + name + "> with no open element" + where(lt), r;
      if (stack.back() != name)
        return r.error = "closing </" + name + "> but <" + stack.back() + "> is open" + where(lt), r;
      if (name == "title") r.titles.push_back(title_text), title_text.clear();
      stack.pop_back();
      i = gt + 1;
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    size_t k = 0;
    while (k < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[k])) || tag[k] == '-' || tag[k] == ':')) ++k;
    const std::string name = tag.substr(0, k);
    if (name.empty()) return r.error = "tag without a name" + where(lt), r;
    // Attributes: name="value" separated by white space.
    while (k < tag.size()) {
      while (k < tag.size() && std::isspace(static_cast<unsigned char>(tag[k]))) ++k;
      if (k == tag.size()) break;
      const size_t a = k;
      while (k < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[k])) || tag[k] == '-' || tag[k] == ':')) ++k;
      const std::string attr = tag.substr(a, k - a);
      if (attr.empty() || k + 1 >= tag.size() || tag[k] != '=' || tag[k + 1] != '"')
        return r.error = "attribute of <" + name + "> not name=\"value\"" + where(lt), r;
      const size_t close = tag.find('"', k + 2);
      if (close == std::string::npos) return r.error = "unterminated attribute value in <" + name + ">" + where(lt), r;
      const std::string value = tag.substr(k + 2, close - k - 2);
      if (value.find('<') != std::string::npos) return r.error = "'<' in an attribute of <" + name + ">" + where(lt), r;
      if (attr == "id") {
        if (!r.ids.insert(value).second) return r.error = "duplicate id '" + value + "'" + where(lt), r;
      }
      k = close + 1;
    }
    ++r.elements;
    if (!self_closing) stack.push_back(name);
    if (name == "style" && !self_closing) {  // CSS is raw text: skip to its end tag
      const size_t end = s.find("</style>", gt);
      if (end == std::string::npos) return r.error = "unclosed <style>" + where(lt), r;
      i = end;
      continue;
    }
    i = gt + 1;
  }
  if (!stack.empty()) return r.error = "<" + stack.back() + "> is never closed", r;
  if (r.elements == 0) r.error = "no elements";
  return r;
}

}  // namespace lowbit::testing
