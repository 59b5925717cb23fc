// Precompiled header of the test binaries (tests/CMakeLists.txt): the headers
// nearly every test file includes. Each file still includes what it uses;
// this only saves parsing them once per file.
#ifndef SHREDKV_TESTS_TEST_PCH_H_
#define SHREDKV_TESTS_TEST_PCH_H_

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shredkv/shredkv.h"

#endif  // SHREDKV_TESTS_TEST_PCH_H_
