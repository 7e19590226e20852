/* A program that does nothing: meson links each component library into one, whole and with
 * only the libraries it may use (see meson.build), so that a call across the allowed
 * direction is an undefined reference and fails the build. Never installed or run. */
int main(void)
{
	return 0;
}
