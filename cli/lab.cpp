// Placeholder until the lab lands: every lab command says so and fails.
#include "cli/lab.hpp"

#include <stdexcept>

namespace weft::cli {

nlohmann::json lab_up(const LabOptions&) { throw std::runtime_error("lab: not built yet"); }
nlohmann::json lab_down(const LabOptions&) { throw std::runtime_error("lab: not built yet"); }
nlohmann::json lab_status(const LabOptions&) { throw std::runtime_error("lab: not built yet"); }
std::string lab_state_document(const LabOptions&) { throw std::runtime_error("lab: not built yet"); }

} // namespace weft::cli
