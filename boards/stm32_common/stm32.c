/* The STM32F4/F7 clock start, reset cause and pin set-up every STM32 board runs (stm32.h). */
#include "stm32.h"

#include "cm_board.h"

int stm32_clock_start(const stm32_clock_t *c)
{
    RCC_CR |= RCC_CR_HSION;
    (void)cm_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);

    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* the enable takes effect before the next access to PWR */
    PWR_CR |= PWR_CR_VOS_SCALE1;

    RCC_PLLCFGR = c->pllcfgr;
    RCC_CR |= RCC_CR_PLLON;
    if (!cm_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return 0; /* stay on HSI: slower, still correct */
    }

    PWR_CR |= PWR_CR_ODEN;
    (void)cm_wait(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY);
    PWR_CR |= PWR_CR_ODSWEN;
    (void)cm_wait(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY);

    FLASH_ACR = FLASH_ACR_LATENCY(c->flash_latency) | c->flash_acr;
    (void)cm_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_LATENCY(c->flash_latency));

    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_PPRE_MASK) | RCC_CFGR_HPRE_DIV1 | RCC_CFGR_PPRE1_DIV4 |
               RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    return cm_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL);
}

uint8_t stm32_reset_cause(void)
{
    uint32_t csr = RCC_CSR;
    RCC_CSR |= RCC_CSR_RMVF;
    if (csr & (RCC_CSR_IWDGRSTF | RCC_CSR_WWDGRSTF)) {
        return CM_RESET_WATCHDOG;
    }
    if (csr & RCC_CSR_SFTRSTF) {
        return CM_RESET_SOFTWARE;
    }
    if (csr & RCC_CSR_PORRSTF) {
        return CM_RESET_POWER_ON;
    }
    if (csr & RCC_CSR_BORRSTF) {
        return CM_RESET_BROWNOUT;
    }
    return (csr & RCC_CSR_PINRSTF) ? CM_RESET_PIN : CM_RESET_POWER_ON;
}

#define GPIO_MODE_AF 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_PULL_UP 1u

void stm32_pin_af(uint32_t port, uint32_t pin, uint32_t af, int pull_up)
{
    const uint32_t two = 2u * pin;        /* 2-bit fields: MODER, OSPEEDR, PUPDR */
    const uint32_t four = 4u * (pin & 7u); /* 4-bit fields: AFRL (pins 0-7), AFRH (8-15) */
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << two)) | (GPIO_MODE_AF << two);
    GPIO_OSPEEDR(port) = (GPIO_OSPEEDR(port) & ~(3u << two)) | (GPIO_SPEED_HIGH << two);
    GPIO_PUPDR(port) = (GPIO_PUPDR(port) & ~(3u << two)) | ((pull_up ? GPIO_PULL_UP : 0u) << two);
    GPIO_AFR(port, pin) = (GPIO_AFR(port, pin) & ~(15u << four)) | (af << four);
}
