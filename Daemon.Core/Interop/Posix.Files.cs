using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>What a path or an open file is, and changes to its name, owner, mode and length.</summary>
internal static unsafe partial class Posix
{
    internal const int AT_FDCWD = -100;
    internal const int AT_SYMLINK_NOFOLLOW = 0x100;
    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_BASIC_STATS = 0x7ff;
    internal const int SEEK_SET = 0;

    /// <summary>
    /// fstat(2), through statx(2): struct statx has one layout on every architecture, unlike
    /// struct stat (x86-64 and arm64 differ).
    /// </summary>
    public static int Fstat(int fd, out FileStatus status, out int errno) =>
        StatX(fd, "", AT_EMPTY_PATH, out status, out errno);

    /// <summary>stat(2), through statx(2): symbolic links (and /proc's magic links) are followed.</summary>
    public static int Stat(string path, out FileStatus status, out int errno) =>
        StatX(AT_FDCWD, path, 0, out status, out errno);

    /// <summary>lstat(2), through statx(2): a symbolic link is described, not followed.</summary>
    public static int Lstat(string path, out FileStatus status, out int errno) =>
        StatX(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, out status, out errno);

    private static int StatX(int directory, string path, int flags, out FileStatus status, out int errno)
    {
        StatxBuffer buffer;
        int result = WithErrno(Libc.statx(directory, path, flags, STATX_BASIC_STATS, &buffer), out errno);
        status = result == 0
            ? new FileStatus(DeviceNumber(buffer.stx_dev_major, buffer.stx_dev_minor), buffer.stx_ino, buffer.stx_mode, buffer.stx_nlink, buffer.stx_uid, buffer.stx_gid)
            : default;
        return result;
    }

    /// <summary>The dev_t that stat(2) reports for a device's major and minor numbers (glibc's makedev).</summary>
    internal static ulong DeviceNumber(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    public static int Unlink(string path, out int errno) =>
        WithErrno(Libc.unlink(path), out errno);

    /// <summary>Empties the file and puts its offset back at 0, so the next write starts it.</summary>
    public static int Truncate(int fd, out int errno)
    {
        int result = WithErrno(Libc.ftruncate(fd, 0), out errno);
        return result < 0 ? result : (int)WithErrno(Libc.lseek(fd, 0, SEEK_SET), out errno);
    }

    public static int ChangeOwner(int fd, uint uid, uint gid, out int errno) =>
        WithErrno(Libc.fchown(fd, uid, gid), out errno);

    public static int Rename(string from, string to, out int errno) =>
        WithErrno(Libc.rename(from, to), out errno);

    public static int ChangeMode(int fd, uint mode, out int errno) =>
        WithErrno(Libc.fchmod(fd, mode), out errno);

    /// <summary>The f_type of the file system <paramref name="fd"/> lives on (statfs(2) magic numbers).</summary>
    public static int FileSystemType(int fd, out long type, out int errno)
    {
        // struct statfs starts with f_type (a long) on every 64-bit Linux ABI; 120 bytes in all.
        byte* buffer = stackalloc byte[256];
        int result = WithErrno(Libc.fstatfs(fd, buffer), out errno);
        type = result == 0 ? *(long*)buffer : 0;
        return result;
    }

    /// <summary>struct statx (linux/stat.h): the fields read here, at their offsets; 256 bytes in all.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    internal struct StatxBuffer
    {
        [FieldOffset(0)]
        public uint stx_mask;
        [FieldOffset(16)]
        public uint stx_nlink;
        [FieldOffset(20)]
        public uint stx_uid;
        [FieldOffset(24)]
        public uint stx_gid;
        [FieldOffset(28)]
        public ushort stx_mode;
        [FieldOffset(32)]
        public ulong stx_ino;
        [FieldOffset(136)]
        public uint stx_dev_major;
        [FieldOffset(140)]
        public uint stx_dev_minor;
    }

    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int statx(int directory, string path, int flags, uint mask, StatxBuffer* buffer);

        [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int unlink(string path);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int ftruncate(int fd, long length);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial long lseek(int fd, long offset, int whence);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int fchown(int fd, uint uid, uint gid);

        [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int rename(string from, string to);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int fchmod(int fd, uint mode);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int fstatfs(int fd, byte* buffer);
    }
}
