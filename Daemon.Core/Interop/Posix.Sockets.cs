using System;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>Passing descriptors over Unix sockets (SCM_RIGHTS) and asking who is at the other end.</summary>
internal static unsafe partial class Posix
{
    private const int UcredBytes = 12;

    /// <summary>
    /// Sends <paramref name="data"/> with <paramref name="fds"/> attached (SCM_RIGHTS): the peer
    /// receives descriptors of its own for the same open files. Mono.Posix builds the control message.
    /// </summary>
    public static long SendWithDescriptors(int socket, byte[] data, int[] fds, out int errno)
    {
        fixed (byte* bytes = data)
        {
            var message = new Msghdr { msg_iov = [new Iovec { iov_base = (IntPtr)bytes, iov_len = (ulong)data.Length }], msg_iovlen = 1 };
            if (fds.Length > 0)
            {
                long payload = fds.Length * sizeof(int);
                message.msg_control = new byte[Syscall.CMSG_SPACE((ulong)payload)];
                message.msg_controllen = message.msg_control.Length;
                var header = new Cmsghdr { cmsg_len = (long)Syscall.CMSG_LEN((ulong)payload), cmsg_level = UnixSocketProtocol.SOL_SOCKET, cmsg_type = UnixSocketControlMessage.SCM_RIGHTS };
                long at = Syscall.CMSG_FIRSTHDR(message);
                header.WriteToBuffer(message, at);
                long data0 = Syscall.CMSG_DATA(message, at);
                for (int i = 0; i < fds.Length; i++)
                {
                    BitConverter.TryWriteBytes(message.msg_control.AsSpan((int)data0 + (i * sizeof(int)), sizeof(int)), fds[i]);
                }
            }

            return RetryOnEintr((socket, message), static s => Syscall.sendmsg(s.socket, s.message, MessageFlags.MSG_NOSIGNAL), out errno);
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="buffer"/> and any descriptors attached to it,
    /// close-on-exec (MSG_CMSG_CLOEXEC). Returns the byte count, 0 at end of stream, -1 on error.
    /// </summary>
    public static long ReceiveWithDescriptors(int socket, byte[] buffer, int maxDescriptors, out int[] fds, out int errno)
    {
        fds = [];
        fixed (byte* bytes = buffer)
        {
            var message = new Msghdr
            {
                msg_iov = [new Iovec { iov_base = (IntPtr)bytes, iov_len = (ulong)buffer.Length }],
                msg_iovlen = 1,
                msg_control = new byte[Syscall.CMSG_SPACE((ulong)(maxDescriptors * sizeof(int)))],
            };
            message.msg_controllen = message.msg_control.Length;
            long n = RetryOnEintr((socket, message), static s => Syscall.recvmsg(s.socket, s.message, MessageFlags.MSG_CMSG_CLOEXEC), out errno);
            if (n < 0)
            {
                return n;
            }

            var received = new System.Collections.Generic.List<int>();
            for (long at = Syscall.CMSG_FIRSTHDR(message); at != -1; at = Syscall.CMSG_NXTHDR(message, at))
            {
                Cmsghdr header = Cmsghdr.ReadFromBuffer(message, at);
                if (header.cmsg_level != UnixSocketProtocol.SOL_SOCKET || header.cmsg_type != UnixSocketControlMessage.SCM_RIGHTS)
                {
                    continue;
                }

                long data0 = Syscall.CMSG_DATA(message, at);
                long count = (header.cmsg_len - (data0 - at)) / sizeof(int);
                for (int i = 0; i < count; i++)
                {
                    received.Add(BitConverter.ToInt32(message.msg_control, (int)data0 + (i * sizeof(int))));
                }
            }

            fds = [.. received];
            return n;
        }
    }

    /// <summary>
    /// A Unix stream socket bound to <paramref name="path"/>, close-on-exec, or -1. Bound here, not by
    /// System.Net.Sockets, which deletes the file of a Unix socket it bound when that Socket is
    /// disposed: a daemon that hands its listener over must leave the file to the next generation.
    /// </summary>
    public static int BindUnixSocket(string path, out int errno)
    {
        int fd = WithErrno(Syscall.socket(UnixAddressFamily.AF_UNIX, UnixSocketType.SOCK_STREAM, UnixSocketFlags.SOCK_CLOEXEC, 0), out errno);
        if (fd < 0)
        {
            return fd;
        }

        if (WithErrno(Syscall.bind(fd, new SockaddrUn(path, false)), out errno) < 0)
        {
            Close(fd);
            return -1;
        }

        return fd;
    }

    /// <summary>The pid and uid of the process at the other end of a connected Unix socket (SO_PEERCRED).</summary>
    public static int PeerCredentials(int socket, out int pid, out uint uid, out int errno)
    {
        byte[] credentials = new byte[UcredBytes];
        long length = UcredBytes;
        int result = WithErrno(Syscall.getsockopt(socket, UnixSocketProtocol.SOL_SOCKET, UnixSocketOptionName.SO_PEERCRED, credentials, ref length), out errno);
        pid = result == 0 ? BitConverter.ToInt32(credentials, 0) : 0;
        uid = result == 0 ? BitConverter.ToUInt32(credentials, 4) : uint.MaxValue;
        return result;
    }
}
