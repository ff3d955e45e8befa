#include "hpcxl/common/err.h"

const char *
hpcxl_strerror(int err)
{
	switch (err) {
#define HPCXL_ERR_CASE(name, value, text)                                     \
	case HPCXL_##name:                                                    \
		return text;
		HPCXL_ERRORS(HPCXL_ERR_CASE)
#undef HPCXL_ERR_CASE
	}
	return "unknown error";
}
