# W2P_SANITIZE=address;undefined or thread: applied to every target of the build.
if(W2P_SANITIZE)
  string(REPLACE ";" "," _w2p_san "${W2P_SANITIZE}")
  add_compile_options(-fsanitize=${_w2p_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_w2p_san})
  message(STATUS "w2p: sanitizers ${_w2p_san}")
endif()
