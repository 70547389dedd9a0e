using Daemon.Example.Web;

// start|stop|restart|status|reload|run for a web server; restart fails no request.
return new WebExample().Main(args);
