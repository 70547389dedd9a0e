namespace Daemon.Interop;

/// <summary>The l_type of a POSIX record lock (struct flock), alike on x86-64 and arm64.</summary>
internal enum LockType : short
{
    F_RDLCK = 0,
    F_WRLCK = 1,
    F_UNLCK = 2,
}
