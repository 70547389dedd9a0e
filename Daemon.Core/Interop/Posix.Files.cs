using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>What a path or an open file is, and changes to its name, owner, mode and length.</summary>
internal static unsafe partial class Posix
{
    public static int Fstat(int fd, out Stat stat, out int errno) =>
        WithErrno(Syscall.fstat(fd, out stat), out errno);

    public static int Lstat(string path, out Stat stat, out int errno) =>
        WithErrno(Syscall.lstat(path, out stat), out errno);

    public static int Unlink(string path, out int errno) =>
        WithErrno(Syscall.unlink(path), out errno);

    /// <summary>Empties the file and puts its offset back at 0, so the next write starts it.</summary>
    public static int Truncate(int fd, out int errno)
    {
        int result = WithErrno(Syscall.ftruncate(fd, 0), out errno);
        return result < 0 ? result : (int)WithErrno(Syscall.lseek(fd, 0, SeekFlags.SEEK_SET), out errno);
    }

    public static int ChangeOwner(int fd, uint uid, uint gid, out int errno) =>
        WithErrno(Syscall.fchown(fd, uid, gid), out errno);

    public static int Rename(string from, string to, out int errno) =>
        WithErrno(Syscall.rename(from, to), out errno);

    public static int ChangeMode(int fd, uint mode, out int errno) =>
        WithErrno(Syscall.fchmod(fd, (FilePermissions)mode), out errno);

    /// <summary>The f_type of the file system <paramref name="fd"/> lives on (statfs(2) magic numbers).</summary>
    public static int FileSystemType(int fd, out long type, out int errno)
    {
        // struct statfs starts with f_type (a long) on every 64-bit Linux ABI; 120 bytes in all.
        byte* buffer = stackalloc byte[256];
        int result = WithErrno(Fstatfs(fd, buffer), out errno);
        type = result == 0 ? *(long*)buffer : 0;
        return result;
    }

    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static partial int Fstatfs(int fd, byte* buffer);
}
