namespace w2p {
const char* framework_version() { return "0.1.0"; }
}  // namespace w2p
