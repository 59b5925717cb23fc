// shredkv — umbrella header: the whole public API.
#ifndef SHREDKV_SHREDKV_H_
#define SHREDKV_SHREDKV_H_

#include "shredkv/backup.h"
#include "shredkv/iterator.h"
#include "shredkv/key_custody.h"
#include "shredkv/key_provider.h"
#include "shredkv/listener.h"
#include "shredkv/options.h"
#include "shredkv/portability.h"
#include "shredkv/sharded_store.h"
#include "shredkv/status.h"
#include "shredkv/store.h"
#include "shredkv/types.h"
#include "shredkv/version.h"
#include "shredkv/write_batch.h"

#endif  // SHREDKV_SHREDKV_H_
