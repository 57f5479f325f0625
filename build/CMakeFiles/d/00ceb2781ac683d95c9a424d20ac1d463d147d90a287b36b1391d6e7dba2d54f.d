broker/middleman_autogen/timestamp: \
  /work/main/broker/CMakeLists.txt \
  /work/main/broker/main.cpp \
  /usr/bin/cmake
