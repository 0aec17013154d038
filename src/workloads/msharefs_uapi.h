/* The msharefs ioctl ABI of the two mshare series revisions mmstorm speaks (never merged). */
#ifndef MMSTORM_MSHAREFS_UAPI_H
#define MMSTORM_MSHAREFS_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * No released kernel ships include/uapi/linux/msharefs.h, so the structs are spelled out
 * here, renamed so they cannot clash with a header that appears one day. Sources:
 *
 * 2025 (Anthony Yznaga, v2 <20250404021902.48863-1-anthony.yznaga@oracle.com> and v3
 * <20250820010415.699353-1-anthony.yznaga@oracle.com>): the region is sized with
 * ftruncate()/fallocate() (a multiple of mshare_info), objects are mapped into it at byte
 * offsets, and attachers mmap() the whole file MAP_SHARED.
 *
 * 2024 (RFC v3 <20240903232241.43995-1-anthony.yznaga@oracle.com>, and the January 2025 v1
 * <20250124235454.84587-1-anthony.yznaga@oracle.com>, which added UNMAP as 'x' 3): the region
 * has an absolute start address and size set with SET_SIZE (PGDIR_SIZE-aligned) and read
 * back with GET_SIZE; objects are mapped at absolute addresses.
 *
 * Note that the 2024 SET_SIZE and the 2025 UNMAP are the same number (_IOW('x', 1, 16
 * bytes)): which revision a kernel speaks is told by GET_SIZE, never by trying SET_SIZE.
 */

/* ---- 2025: v2/v3 ---- */
struct ms_mshare_create {
	__u64 region_offset;
	__u64 size;
	__u64 offset;
	__u32 prot;
	__u32 flags;
	__u32 fd;
};

struct ms_mshare_unmap {
	__u64 region_offset;
	__u64 size;
};

#define MS_MSHAREFS_CREATE_MAPPING _IOW('x', 0, struct ms_mshare_create)
#define MS_MSHAREFS_UNMAP _IOW('x', 1, struct ms_mshare_unmap)

/* ---- 2024: RFC v3 (+ UNMAP of the January 2025 v1) ---- */
struct ms_mshare_info_2024 {
	__u64 start;
	__u64 size;
};

struct ms_mshare_create_2024 {
	__u64 addr;
	__u64 size;
	__u64 offset;
	__u32 prot;
	__u32 flags;
	__u32 fd;
};

struct ms_mshare_unmap_2024 {
	__u64 addr;
	__u64 size;
};

#define MS_MSHAREFS_GET_SIZE_2024 _IOR('x', 0, struct ms_mshare_info_2024)
#define MS_MSHAREFS_SET_SIZE_2024 _IOW('x', 1, struct ms_mshare_info_2024)
#define MS_MSHAREFS_CREATE_MAPPING_2024 _IOW('x', 2, struct ms_mshare_create_2024)
#define MS_MSHAREFS_UNMAP_2024 _IOW('x', 3, struct ms_mshare_unmap_2024)

#define MS_MSHAREFS_MOUNT "/sys/fs/mshare"
#define MS_MSHAREFS_INFO "mshare_info"

#endif
