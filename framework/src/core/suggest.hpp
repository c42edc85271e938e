// Did-you-mean suggestions for unknown names (node types, options, ports, channels).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace w2p {

/// Edit distance (insert, delete, substitute, swap of neighbours), case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The closest candidate when it is close enough to be a typo (distance <= max(1, len/3)),
/// else "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

/// "did you mean 'x'?" or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace w2p
