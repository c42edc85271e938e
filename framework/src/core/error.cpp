#include "w2p/error.hpp"

#include <sstream>

namespace w2p {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kConfig:
      return "config";
    case ErrorKind::kType:
      return "type";
    case ErrorKind::kPlugin:
      return "plugin";
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kData:
      return "data";
    case ErrorKind::kCancelled:
      return "cancelled";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string SourceLocation::str() const {
  if (file.empty()) return {};
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column > 0 ? column : 1);
  return out;
}

Error::Error(ErrorKind kind, std::string message, std::string detail)
    : kind_(kind), message_(std::move(message)), detail_(std::move(detail)) {
  what_ = format();
}

Error& Error::at(SourceLocation location) {
  location_ = std::move(location);
  what_ = format();
  return *this;
}
Error& Error::in_node(std::string node) {
  if (node_.empty()) node_ = std::move(node);
  what_ = format();
  return *this;
}
Error& Error::on_port(std::string port) {
  port_ = std::move(port);
  what_ = format();
  return *this;
}
Error& Error::note(std::string note) {
  notes_.push_back(std::move(note));
  what_ = format();
  return *this;
}

std::string Error::format() const {
  std::ostringstream out;
  if (location_.known()) out << location_.str() << ": ";
  out << "error: ";
  if (!node_.empty() && message_.rfind("node '", 0) != 0) out << "node '" << node_ << "': ";
  out << message_;
  for (const auto& n : notes_) out << "\nnote: " << n;
  if (!detail_.empty()) out << "\nnote: detail: " << detail_;
  return out.str();
}

const char* Error::what() const noexcept { return what_.c_str(); }

ErrorList::ErrorList(std::vector<Error> errors) : errors_(std::move(errors)) {
  for (const auto& e : errors_) what_ += e.format() + "\n";
}
const char* ErrorList::what() const noexcept { return what_.c_str(); }

void assertion_failed(const char* condition, const char* message, const char* file, int line) {
  throw Error(ErrorKind::kInternal,
              std::string("internal error: ") + message + " (" + condition + ")",
              std::string(file) + ":" + std::to_string(line));
}

}  // namespace w2p
