# w2p_set_warnings(target): the project's warning set; -Werror under W2P_WERROR (ON in CI).
function(w2p_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wimplicit-fallthrough)
  if(W2P_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
