# Additional clean files
cmake_minimum_required(VERSION 3.16)

if("${CONFIG}" STREQUAL "" OR "${CONFIG}" STREQUAL "RelWithDebInfo")
  file(REMOVE_RECURSE
  "broker/CMakeFiles/middleman_autogen.dir/AutogenUsed.txt"
  "broker/CMakeFiles/middleman_autogen.dir/ParseCache.txt"
  "broker/CMakeFiles/middleman_broker_autogen.dir/AutogenUsed.txt"
  "broker/CMakeFiles/middleman_broker_autogen.dir/ParseCache.txt"
  "broker/middleman_autogen"
  "broker/middleman_broker_autogen"
  )
endif()
